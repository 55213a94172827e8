//! MLLP framing (HL7 v2.5.1 Appendix C.4): `<VT>` message `<FS><CR>`, VT = 0x0B, FS = 0x1C,
//! CR = 0x0D. Bytes outside a frame (line noise, a peer's garbage) are discarded, not fatal; a
//! frame longer than the limit is dropped and reported, so one bad peer cannot exhaust memory.

pub const START: u8 = 0x0B;
pub const END: [u8; 2] = [0x1C, 0x0D];

/// What the deframer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// A frame exceeded the limit and was discarded up to its end; its first bytes are kept
    /// (up to [`HEAD_BYTES`]) so the MSH segment can still be answered.
    TooLarge {
        head: Vec<u8>,
    },
}

/// How much of an oversized frame is kept: an MSH segment is far shorter.
pub const HEAD_BYTES: usize = 4096;

/// Accumulates bytes from a connection and yields complete frames.
pub struct Deframer {
    buf: Vec<u8>,
    in_frame: bool,
    overflow: bool,
    head: Vec<u8>,
    max: usize,
}

impl Deframer {
    pub fn new(max_message_bytes: usize) -> Deframer {
        Deframer {
            buf: Vec::new(),
            in_frame: false,
            overflow: false,
            head: Vec::new(),
            max: max_message_bytes,
        }
    }

    /// Feeds bytes; returns the frames they complete, in order.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            if !self.in_frame {
                match bytes.iter().position(|b| *b == START) {
                    Some(i) => {
                        self.in_frame = true;
                        self.overflow = false;
                        self.buf.clear();
                        bytes = &bytes[i + 1..];
                    }
                    None => return out,
                }
                continue;
            }
            // Look for FS CR, also across the boundary with what is buffered.
            let search_from = self.buf.len().saturating_sub(1);
            self.append(bytes);
            let hay = &self.buf[search_from.min(self.buf.len())..];
            let pos = hay
                .windows(2)
                .position(|w| w == END)
                .map(|p| p + search_from);
            match pos {
                Some(p) => {
                    let consumed_from_input = p + 2 - (self.buf.len() - bytes.len());
                    let frame: Vec<u8> = self.buf[..p].to_vec();
                    out.push(if self.overflow || frame.len() > self.max {
                        let head = if self.overflow {
                            std::mem::take(&mut self.head)
                        } else {
                            frame[..frame.len().min(HEAD_BYTES)].to_vec()
                        };
                        Frame::TooLarge { head }
                    } else {
                        Frame::Message(frame)
                    });
                    self.in_frame = false;
                    self.buf.clear();
                    bytes = &bytes[consumed_from_input.min(bytes.len())..];
                }
                None => {
                    if self.buf.len() > self.max {
                        // Keep only the last byte (it may be FS) and, the first time, the
                        // head; remember the overflow.
                        if !self.overflow {
                            self.head = self.buf[..self.buf.len().min(HEAD_BYTES)].to_vec();
                        }
                        let last = self.buf.last().copied();
                        self.buf.clear();
                        self.buf.extend(last);
                        self.overflow = true;
                    }
                    return out;
                }
            }
        }
        out
    }

    fn append(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

/// Wraps a message for sending.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message);
    out.extend_from_slice(&END);
    out
}

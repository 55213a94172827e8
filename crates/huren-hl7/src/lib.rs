//! HL7 v2 as hospital lab and report systems send it (issue #5), as pure functions:
//!
//! - [`mllp`]: the Minimal Lower Layer Protocol frame (`0x0B` message `0x1C 0x0D`, HL7 v2.5.1
//!   Appendix C), tolerant of garbage between frames and bounded in size;
//! - [`decode`]: bytes to text *before* any splitting, because a GBK/GB 18030 trail byte can
//!   equal `|`, `^` or `\`; the character set comes from MSH-18 (`UNICODE UTF-8`,
//!   `GB 18030-2000`, and the common `UTF-8`, `GBK`), else a per-sender default;
//! - [`Message`]: segments, fields, repetitions, components, escapes (HL7 v2.5.1 §2.7);
//! - [`check_oru`]: what huren accepts (ORU^R01, v2.3–2.5.1) and the acknowledgment code and
//!   HL7 table 0357 error for what it does not;
//! - [`ack`]: the ACK, with sender and receiver swapped, MSA-2 = the message's MSH-10, and an
//!   ERR segment in the form of the message's version (ERR-1 up to v2.4, ERR-2..4 from v2.5).

pub mod mllp;

use encoding_rs::{Encoding, GB18030, UTF_8};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Hl7Error {
    #[error("not an HL7 v2 message: it must start with MSH and its separators")]
    NoHeader,
    #[error("MSH-18 names character set {0:?}, which huren does not accept")]
    UnknownCharset(String),
    #[error("the message is not valid {0}")]
    Undecodable(&'static str),
}

/// Text of a message, decoded with the character set it declares (MSH-18) or, when it
/// declares none, `default` (the sender's configured default; UTF-8 when unset).
pub fn decode(bytes: &[u8], default: Option<&'static Encoding>) -> Result<String, Hl7Error> {
    // MSH-1 and MSH-2 are ASCII; MSH-18 is found on a provisional decoding (UTF-8 when the
    // bytes are valid UTF-8, else GB 18030), then the message is decoded as declared.
    let provisional = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => GB18030.decode_without_bom_handling(bytes).0.into_owned(),
    };
    let declared = msh_field(&provisional, 18).unwrap_or_default();
    let encoding = match charset_of(&declared)? {
        Some(e) => e,
        None => default.unwrap_or(UTF_8),
    };
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(Hl7Error::Undecodable(encoding.name()));
    }
    Ok(text.into_owned())
}

/// The encoding an MSH-18 value names (HL7 table 0211 and what senders really write); `None`
/// for an empty value or ASCII.
pub fn charset_of(msh18: &str) -> Result<Option<&'static Encoding>, Hl7Error> {
    let first = msh18.split('~').next().unwrap_or("").trim();
    let norm = first.to_ascii_uppercase().replace(['-', '_', ' '], "");
    Ok(match norm.as_str() {
        "" | "ASCII" => None,
        "UNICODEUTF8" | "UTF8" => Some(UTF_8),
        "GB180302000" | "GB18030" | "GBK" | "GB2312" | "CP936" => Some(GB18030),
        _ => return Err(Hl7Error::UnknownCharset(first.to_owned())),
    })
}

/// MSH field `n` (MSH-1 is the field separator itself) of the first segment, unescaped.
fn msh_field(text: &str, n: usize) -> Option<String> {
    let msh = text.split(['\r', '\n']).next()?;
    let sep = msh.chars().nth(3)?;
    if !msh.starts_with("MSH") {
        return None;
    }
    // After "MSH" + separator, fields are MSH-2, MSH-3, …
    msh[3 + sep.len_utf8()..]
        .split(sep)
        .nth(n.checked_sub(2)?)
        .map(str::to_owned)
}

/// Delimiters from MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: char,
    pub subcomponent: char,
}

/// One field: repetitions of components of subcomponents, unescaped.
pub type Field = Vec<Vec<Vec<String>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: String,
    /// `fields[0]` is field 1 (for MSH: MSH-1, the separator).
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub delimiters: Delimiters,
    pub segments: Vec<Segment>,
}

impl Message {
    /// Parses decoded text. Segments end with CR; LF and CR LF are tolerated.
    pub fn parse(text: &str) -> Result<Message, Hl7Error> {
        let mut chars = text.chars();
        if !text.starts_with("MSH") {
            return Err(Hl7Error::NoHeader);
        }
        let field = chars.nth(3).ok_or(Hl7Error::NoHeader)?;
        let enc: Vec<char> = text[3 + field.len_utf8()..]
            .chars()
            .take_while(|c| *c != field)
            .collect();
        if enc.len() < 4 || field.is_alphanumeric() {
            return Err(Hl7Error::NoHeader);
        }
        let d = Delimiters {
            field,
            component: enc[0],
            repetition: enc[1],
            escape: enc[2],
            subcomponent: enc[3],
        };
        let mut segments = Vec::new();
        for line in text.split(['\r', '\n']).filter(|l| !l.trim().is_empty()) {
            let mut parts = line.split(d.field);
            let id = parts.next().unwrap_or("").to_owned();
            let mut fields: Vec<Field> = Vec::new();
            if id == "MSH" {
                fields.push(vec![vec![vec![d.field.to_string()]]]);
                // MSH-2 is taken literally (it holds the delimiters).
                let msh2 = parts.next().unwrap_or("").to_owned();
                fields.push(vec![vec![vec![msh2]]]);
            }
            for raw in parts {
                fields.push(split_field(raw, &d));
            }
            segments.push(Segment { id, fields });
        }
        Ok(Message {
            delimiters: d,
            segments,
        })
    }

    pub fn segments<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.id == id)
    }

    /// The first segment `id`'s field `n`, first repetition, component `c` (1-based).
    pub fn get(&self, id: &str, n: usize, c: usize) -> Option<&str> {
        self.segments.iter().find(|s| s.id == id)?.get(n, c)
    }
}

impl Segment {
    /// Field `n`, first repetition, component `c`, first subcomponent (1-based); `None` when
    /// absent or empty.
    pub fn get(&self, n: usize, c: usize) -> Option<&str> {
        let v = self
            .fields
            .get(n.checked_sub(1)?)?
            .first()?
            .get(c.checked_sub(1)?)?
            .first()?;
        (!v.is_empty()).then_some(v.as_str())
    }
}

fn split_field(raw: &str, d: &Delimiters) -> Field {
    raw.split(d.repetition)
        .map(|rep| {
            rep.split(d.component)
                .map(|comp| comp.split(d.subcomponent).map(|s| unescape(s, d)).collect())
                .collect()
        })
        .collect()
}

/// HL7 v2.5.1 §2.7.4: `\F\ \S\ \T\ \R\ \E\` and `\X..\` (hex bytes, UTF-8); `\H\`, `\N\`
/// (highlighting) are dropped; anything else is kept as written.
fn unescape(s: &str, d: &Delimiters) -> String {
    if !s.contains(d.escape) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(d.escape) {
        out.push_str(&rest[..i]);
        let after = &rest[i + d.escape.len_utf8()..];
        let Some(j) = after.find(d.escape) else {
            out.push_str(&rest[i..]);
            return out;
        };
        let seq = &after[..j];
        match seq {
            "F" => out.push(d.field),
            "S" => out.push(d.component),
            "T" => out.push(d.subcomponent),
            "R" => out.push(d.repetition),
            "E" => out.push(d.escape),
            "H" | "N" => {}
            // FT line break (§2.7.6); other formatting commands are dropped.
            ".br" => out.push('\n'),
            x if x.starts_with('.') => {}
            x if x.starts_with('X') && x.len() % 2 == 1 => {
                let bytes: Option<Vec<u8>> = (1..x.len())
                    .step_by(2)
                    .map(|k| u8::from_str_radix(&x[k..k + 2], 16).ok())
                    .collect();
                match bytes.and_then(|b| String::from_utf8(b).ok()) {
                    Some(t) => out.push_str(&t),
                    None => {
                        out.push(d.escape);
                        out.push_str(seq);
                        out.push(d.escape);
                    }
                }
            }
            _ => {
                out.push(d.escape);
                out.push_str(seq);
                out.push(d.escape);
            }
        }
        rest = &after[j + d.escape.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// MSA-1 acknowledgment codes (HL7 table 0008, original mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Accepted: stored durably.
    AA,
    /// Error in the content: nothing stored; the sender should correct and resend.
    AE,
    /// Rejected: type, event, version or sender not accepted; resending will not help.
    AR,
}

/// Why a message was not accepted: HL7 table 0357 code, text, and where (segment, sequence,
/// field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub ack: AckCode,
    /// Table 0357: 100 segment sequence error, 101 required field missing, 102 data type
    /// error, 103 table value not found, 200 unsupported message type, 201 unsupported event
    /// code, 203 unsupported version id, 207 application internal error.
    pub code: u16,
    pub text: String,
    pub location: Option<(String, usize, usize)>,
}

impl Refusal {
    pub fn new(ack: AckCode, code: u16, text: impl Into<String>) -> Refusal {
        Refusal {
            ack,
            code,
            text: text.into(),
            location: None,
        }
    }
    pub fn at(mut self, segment: &str, sequence: usize, field: usize) -> Refusal {
        self.location = Some((segment.to_owned(), sequence, field));
        self
    }
    fn code_text(&self) -> &'static str {
        match self.code {
            100 => "Segment sequence error",
            101 => "Required field missing",
            102 => "Data type error",
            103 => "Table value not found",
            200 => "Unsupported message type",
            201 => "Unsupported event code",
            203 => "Unsupported version id",
            _ => "Application internal error",
        }
    }
}

pub const VERSIONS: [&str; 5] = ["2.3", "2.3.1", "2.4", "2.5", "2.5.1"];

/// What huren accepts from a lab or report system: ORU^R01 in v2.3–2.5.1 with a control id,
/// a PID with an identifier, and at least one OBR followed by OBX segments with an
/// observation identifier.
pub fn check_oru(m: &Message) -> Result<(), Refusal> {
    let msh = m
        .segments("MSH")
        .next()
        .ok_or_else(|| Refusal::new(AckCode::AR, 100, "no MSH segment"))?;
    let version = msh.get(12, 1).unwrap_or("");
    if !VERSIONS.contains(&version) {
        return Err(Refusal::new(
            AckCode::AR,
            203,
            format!("version {version:?} is not accepted (2.3 to 2.5.1)"),
        )
        .at("MSH", 1, 12));
    }
    let (ty, event) = (msh.get(9, 1).unwrap_or(""), msh.get(9, 2).unwrap_or(""));
    if ty != "ORU" {
        return Err(Refusal::new(
            AckCode::AR,
            200,
            format!("message type {ty:?} is not accepted (ORU)"),
        )
        .at("MSH", 1, 9));
    }
    if event != "R01" {
        return Err(Refusal::new(
            AckCode::AR,
            201,
            format!("event {event:?} is not accepted (R01)"),
        )
        .at("MSH", 1, 9));
    }
    if msh.get(10, 1).is_none() {
        return Err(
            Refusal::new(AckCode::AE, 101, "MSH-10 message control id is missing").at("MSH", 1, 10),
        );
    }
    let pid = m
        .segments("PID")
        .next()
        .ok_or_else(|| Refusal::new(AckCode::AE, 100, "no PID segment"))?;
    if pid.get(3, 1).is_none() {
        return Err(
            Refusal::new(AckCode::AE, 101, "PID-3 patient identifier is missing").at("PID", 1, 3),
        );
    }
    if m.segments("OBR").next().is_none() {
        return Err(Refusal::new(AckCode::AE, 100, "no OBR segment"));
    }
    let mut seen_obr = false;
    for (k, s) in m.segments.iter().enumerate() {
        match s.id.as_str() {
            "OBR" => seen_obr = true,
            "OBX" if !seen_obr => {
                return Err(Refusal::new(
                    AckCode::AE,
                    100,
                    format!("OBX (segment {}) before any OBR", k + 1),
                ));
            }
            "OBX" if s.get(3, 1).is_none() => {
                let seq = m
                    .segments
                    .iter()
                    .take(k + 1)
                    .filter(|x| x.id == "OBX")
                    .count();
                return Err(Refusal::new(
                    AckCode::AE,
                    101,
                    "OBX-3 observation identifier is missing",
                )
                .at("OBX", seq, 3));
            }
            _ => {}
        }
    }
    Ok(())
}

fn escape(s: &str, d: &Delimiters) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let seq = if c == d.escape {
            "E"
        } else if c == d.field {
            "F"
        } else if c == d.component {
            "S"
        } else if c == d.subcomponent {
            "T"
        } else if c == d.repetition {
            "R"
        } else {
            out.push(c);
            continue;
        };
        out.push(d.escape);
        out.push_str(seq);
        out.push(d.escape);
    }
    out
}

/// The acknowledgment of `m` (original mode): MSH with sending and receiving application and
/// facility swapped, MSH-9 `ACK^<event>^ACK`, MSH-10 `control_id`, MSH-12 and MSH-18 as
/// received; MSA-1 the code, MSA-2 the message's MSH-10; for a refusal, an ERR segment
/// (ERR-1 in v2.3/2.4; ERR-2 location, ERR-3 code, ERR-4 severity from v2.5).
pub fn ack(
    m: &Message,
    code: AckCode,
    refusal: Option<&Refusal>,
    control_id: &str,
    now: &str,
) -> String {
    let d = m.delimiters;
    let raw = |n: usize, c: usize| {
        m.get("MSH", n, c)
            .map(|v| escape(v, &d))
            .unwrap_or_default()
    };
    let hd = |n: usize| {
        // HD: namespace^universal id^type, kept whole.
        m.segments("MSH")
            .next()
            .and_then(|s| s.fields.get(n - 1))
            .and_then(|f| f.first())
            .map(|comps| {
                comps
                    .iter()
                    .map(|sub| {
                        sub.iter()
                            .map(|x| escape(x, &d))
                            .collect::<Vec<_>>()
                            .join(&d.subcomponent.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(&d.component.to_string())
            })
            .unwrap_or_default()
    };
    let version = raw(12, 1);
    let event = m.get("MSH", 9, 2).unwrap_or("R01");
    let f = d.field;
    let c = d.component;
    let enc: String = [d.component, d.repetition, d.escape, d.subcomponent]
        .iter()
        .collect();
    let mut out = format!(
        "MSH{f}{enc}{f}{}{f}{}{f}{}{f}{}{f}{now}{f}{f}ACK{c}{event}{c}ACK{f}{}{f}{}{f}{version}{f}{f}{f}{f}{f}{f}{}\r",
        hd(5),
        hd(6),
        hd(3),
        hd(4),
        escape(control_id, &d),
        raw(11, 1),
        raw(18, 1),
    );
    let code_s = match code {
        AckCode::AA => "AA",
        AckCode::AE => "AE",
        AckCode::AR => "AR",
    };
    // MSA-3 (ST) is at most 80 characters and ERR-8 (TX) 250 in v2.5.1 (Ch. 2 field tables):
    // the reason is cut to fit, before escaping so no escape sequence is split.
    let bounded = |n: usize| {
        refusal
            .map(|r| escape(&r.text.chars().take(n).collect::<String>(), &d))
            .unwrap_or_default()
    };
    let text = bounded(80);
    out.push_str(&format!("MSA{f}{code_s}{f}{}{f}{text}\r", raw(10, 1)));
    let text = bounded(250);
    if let Some(r) = refusal {
        let s = d.subcomponent;
        let (seg, seq, fld) = r
            .location
            .clone()
            .map(|(a, b, c)| (a, b.to_string(), c.to_string()))
            .unwrap_or_default();
        if matches!(version.as_str(), "2.3" | "2.3.1" | "2.4") {
            // ERR-1 (CM): segment^sequence^field^code&text&HL70357.
            out.push_str(&format!(
                "ERR{f}{seg}{c}{seq}{c}{fld}{c}{}{s}{}{s}HL70357\r",
                r.code,
                r.code_text()
            ));
        } else {
            // ERR-2 location (ERL), ERR-3 code (CWE, table 0357), ERR-4 severity (E = error),
            // ERR-8 user message.
            out.push_str(&format!(
                "ERR{f}{f}{seg}{c}{seq}{c}{fld}{f}{}{c}{}{c}HL70357{f}E{f}{f}{f}{f}{text}\r",
                r.code,
                r.code_text()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;

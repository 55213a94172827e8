//! Specific Character Set (0008,0005) decoding for the index and DICOM JSON (PS3.5 §6.1).
//!
//! Values are decoded as a whole *before* they are split on `\` (values) or `^`/`=` (PN
//! components): in GBK and GB18030 the second byte of a character may be 0x5C or 0x5E
//! (珅 = AB 7C is harmless, but 昞 = 95 5C and 奮 = 8A 5E are not), so splitting raw bytes
//! corrupts names. ISO 2022 code extensions (multi-valued 0008,0005, PS3.5 §6.1.2.5) are
//! handled here, since dicom-rs does not interpret escape sequences.

use encoding_rs::Encoding;

/// A parsed Specific Character Set: the defined terms as given (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharacterSet {
    terms: Vec<String>,
}

/// What to assume for equipment that writes non-ASCII text with no or a wrong (0008,0005).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assumed {
    /// Trust the declaration; undeclared non-ASCII bytes are taken as UTF-8 when valid,
    /// else GB18030 (the regional norm).
    Declared,
    /// Use this encoding whenever the declaration is absent, default, or ISO_IR 100 — the
    /// usual misconfiguration of Chinese equipment writing GBK.
    Override(&'static Encoding),
}

impl CharacterSet {
    pub fn from_raw(bytes: &[u8]) -> Self {
        let s = String::from_utf8_lossy(bytes);
        let terms = s
            .split('\\')
            .map(|t| t.trim_matches([' ', '\0']).to_owned())
            .collect();
        CharacterSet { terms }
    }

    pub fn is_default(&self) -> bool {
        self.terms
            .iter()
            .all(|t| t.is_empty() || t == "ISO_IR 6" || t == "ISO 2022 IR 6")
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    fn uses_iso2022(&self) -> bool {
        self.terms.len() > 1
            || self
                .terms
                .first()
                .is_some_and(|t| t.starts_with("ISO 2022"))
    }

    /// Names the defined terms huren does not know, for a 0xB000-style warning.
    pub fn unknown_terms(&self) -> Vec<&str> {
        self.terms
            .iter()
            .filter(|t| !t.is_empty() && single_byte_term(t).is_none() && iso2022_term(t).is_none())
            .map(String::as_str)
            .collect()
    }
}

/// Decodes a text value of a charset-dependent VR (SH, LO, ST, LT, UC, UT, PN).
pub fn decode(bytes: &[u8], cs: &CharacterSet, assumed: Assumed) -> String {
    if bytes.is_ascii() && !bytes.contains(&0x1b) {
        return ascii(bytes);
    }
    let first = cs.terms.first().map(String::as_str).unwrap_or("");
    if let Assumed::Override(enc) = assumed
        && (cs.is_default() || first == "ISO_IR 100")
    {
        return enc.decode_without_bom_handling(bytes).0.into_owned();
    }
    if cs.uses_iso2022() {
        return decode_iso2022(bytes, cs);
    }
    match single_byte_term(first) {
        Some(Repertoire::Utf8) => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            // Declared UTF-8 but not valid: the sender lied; GB18030 is the likely truth here.
            Err(_) => encoding_rs::GB18030
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        },
        Some(Repertoire::Latin1) => latin1(bytes),
        Some(Repertoire::Encoding(enc)) => enc.decode_without_bom_handling(bytes).0.into_owned(),
        Some(Repertoire::Ascii) | None => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => encoding_rs::GB18030
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        },
    }
}

/// Text in the default repertoire (AE, CS, DA, UI…) and ASCII-only values.
pub fn ascii(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => latin1(bytes),
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

enum Repertoire {
    Ascii,
    Latin1,
    Utf8,
    Encoding(&'static Encoding),
}

/// Single-byte (and the non-ISO-2022 multi-byte) defined terms, PS3.3 Table C.12-2/C.12-4/C.12-5.
fn single_byte_term(term: &str) -> Option<Repertoire> {
    use Repertoire::*;
    Some(match term {
        "" | "ISO_IR 6" => Ascii,
        "ISO_IR 100" => Latin1,
        "ISO_IR 101" => Encoding(encoding_rs::ISO_8859_2),
        "ISO_IR 109" => Encoding(encoding_rs::ISO_8859_3),
        "ISO_IR 110" => Encoding(encoding_rs::ISO_8859_4),
        "ISO_IR 144" => Encoding(encoding_rs::ISO_8859_5),
        "ISO_IR 127" => Encoding(encoding_rs::ISO_8859_6),
        "ISO_IR 126" => Encoding(encoding_rs::ISO_8859_7),
        "ISO_IR 138" => Encoding(encoding_rs::ISO_8859_8),
        "ISO_IR 148" => Encoding(encoding_rs::WINDOWS_1254),
        "ISO_IR 203" => Encoding(encoding_rs::ISO_8859_15),
        "ISO_IR 13" => Encoding(encoding_rs::SHIFT_JIS),
        "ISO_IR 166" => Encoding(encoding_rs::WINDOWS_874),
        "ISO_IR 192" => Utf8,
        "GB18030" => Encoding(encoding_rs::GB18030),
        "GBK" => Encoding(encoding_rs::GBK),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum G0 {
    Ascii,
    /// JIS X 0208 (ISO 2022 IR 87), two 7-bit bytes per character.
    Jis0208,
    /// JIS X 0212 (ISO 2022 IR 159).
    Jis0212,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum G1 {
    None,
    Latin1,
    Single(&'static Encoding),
    /// JIS X 0201 katakana (ISO 2022 IR 13).
    Katakana,
    /// GB 2312 (ISO 2022 IR 58), EUC-CN form in G1.
    Gb2312,
    /// KS X 1001 (ISO 2022 IR 149), EUC-KR form in G1.
    Ksx1001,
}

fn iso2022_term(term: &str) -> Option<(G0, G1)> {
    Some(match term {
        "ISO 2022 IR 6" => (G0::Ascii, G1::None),
        "ISO 2022 IR 100" => (G0::Ascii, G1::Latin1),
        "ISO 2022 IR 101" => (G0::Ascii, G1::Single(encoding_rs::ISO_8859_2)),
        "ISO 2022 IR 109" => (G0::Ascii, G1::Single(encoding_rs::ISO_8859_3)),
        "ISO 2022 IR 110" => (G0::Ascii, G1::Single(encoding_rs::ISO_8859_4)),
        "ISO 2022 IR 144" => (G0::Ascii, G1::Single(encoding_rs::ISO_8859_5)),
        "ISO 2022 IR 127" => (G0::Ascii, G1::Single(encoding_rs::ISO_8859_6)),
        "ISO 2022 IR 126" => (G0::Ascii, G1::Single(encoding_rs::ISO_8859_7)),
        "ISO 2022 IR 138" => (G0::Ascii, G1::Single(encoding_rs::ISO_8859_8)),
        "ISO 2022 IR 148" => (G0::Ascii, G1::Single(encoding_rs::WINDOWS_1254)),
        "ISO 2022 IR 166" => (G0::Ascii, G1::Single(encoding_rs::WINDOWS_874)),
        "ISO 2022 IR 13" => (G0::Ascii, G1::Katakana),
        "ISO 2022 IR 58" => (G0::Ascii, G1::Gb2312),
        "ISO 2022 IR 149" => (G0::Ascii, G1::Ksx1001),
        "ISO 2022 IR 87" => (G0::Jis0208, G1::None),
        "ISO 2022 IR 159" => (G0::Jis0212, G1::None),
        _ => return None,
    })
}

/// The state a value starts in: the first defined term's G0/G1 (PS3.5 §6.1.2.5.3). An empty
/// first value means ISO-IR 6 with no G1.
fn initial_state(cs: &CharacterSet) -> (G0, G1) {
    let first = cs.terms.first().map(String::as_str).unwrap_or("");
    let g1 = match first {
        "" | "ISO 2022 IR 6" => G1::None,
        t => match iso2022_term(t) {
            Some((_, g1)) => g1,
            None => match t {
                "ISO_IR 100" => G1::Latin1,
                "ISO_IR 13" => G1::Katakana,
                _ => G1::None,
            },
        },
    };
    (G0::Ascii, g1)
}

fn decode_iso2022(bytes: &[u8], cs: &CharacterSet) -> String {
    let initial = initial_state(cs);
    let (mut g0, mut g1) = initial;
    let mut out = String::with_capacity(bytes.len());
    let mut run: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1b {
            flush(&mut out, &mut run, g0, g1);
            let rest = &bytes[i + 1..];
            let (consumed, change) = escape(rest);
            match change {
                Some(Designation::SetG0(n)) => g0 = n,
                Some(Designation::SetG1(n)) => g1 = n,
                None => {}
            }
            i += 1 + consumed;
            continue;
        }
        // Delimiters return to the initial state when G0 is single-byte (PS3.5 §6.1.2.5.3);
        // in a two-byte G0 these bytes belong to characters.
        if g0 == G0::Ascii && matches!(b, b'\\' | b'^' | b'=' | b'\r' | b'\n' | b'\t' | 0x0c) {
            flush(&mut out, &mut run, g0, g1);
            out.push(char::from(b));
            (g0, g1) = initial;
            i += 1;
            continue;
        }
        run.push(b);
        i += 1;
    }
    flush(&mut out, &mut run, g0, g1);
    out
}

enum Designation {
    SetG0(G0),
    SetG1(G1),
}

/// Recognises the escape sequences of PS3.3 Table C.12-3/C.12-4; returns bytes consumed after ESC.
fn escape(rest: &[u8]) -> (usize, Option<Designation>) {
    use Designation::*;
    let seqs: &[(&[u8], Designation)] = &[
        (b"$)A", SetG1(G1::Gb2312)),
        (b"$)C", SetG1(G1::Ksx1001)),
        (b"$(D", SetG0(G0::Jis0212)),
        (b"$B", SetG0(G0::Jis0208)),
        (b"(B", SetG0(G0::Ascii)),
        (b"(J", SetG0(G0::Ascii)),
        (b")I", SetG1(G1::Katakana)),
        (b"-A", SetG1(G1::Latin1)),
        (b"-B", SetG1(G1::Single(encoding_rs::ISO_8859_2))),
        (b"-C", SetG1(G1::Single(encoding_rs::ISO_8859_3))),
        (b"-D", SetG1(G1::Single(encoding_rs::ISO_8859_4))),
        (b"-L", SetG1(G1::Single(encoding_rs::ISO_8859_5))),
        (b"-G", SetG1(G1::Single(encoding_rs::ISO_8859_6))),
        (b"-F", SetG1(G1::Single(encoding_rs::ISO_8859_7))),
        (b"-H", SetG1(G1::Single(encoding_rs::ISO_8859_8))),
        (b"-M", SetG1(G1::Single(encoding_rs::WINDOWS_1254))),
        (b"-T", SetG1(G1::Single(encoding_rs::WINDOWS_874))),
    ];
    for (seq, d) in seqs {
        if rest.starts_with(seq) {
            let d = match d {
                SetG0(g) => SetG0(*g),
                SetG1(g) => SetG1(*g),
            };
            return (seq.len(), Some(d));
        }
    }
    (0, None)
}

fn flush(out: &mut String, run: &mut Vec<u8>, g0: G0, g1: G1) {
    if run.is_empty() {
        return;
    }
    match g0 {
        G0::Jis0208 => {
            let euc: Vec<u8> = run
                .iter()
                .map(|b| if *b >= 0x21 { b | 0x80 } else { *b })
                .collect();
            out.push_str(&encoding_rs::EUC_JP.decode_without_bom_handling(&euc).0);
        }
        G0::Jis0212 => {
            let mut euc = Vec::with_capacity(run.len() * 3 / 2);
            for pair in run.chunks(2) {
                euc.push(0x8f);
                euc.extend(pair.iter().map(|b| b | 0x80));
            }
            out.push_str(&encoding_rs::EUC_JP.decode_without_bom_handling(&euc).0);
        }
        G0::Ascii => match g1 {
            G1::None => out.push_str(&ascii(run)),
            G1::Latin1 => out.push_str(&latin1(run)),
            G1::Single(enc) => out.push_str(&enc.decode_without_bom_handling(run).0),
            G1::Katakana => {
                out.push_str(&encoding_rs::SHIFT_JIS.decode_without_bom_handling(run).0)
            }
            G1::Gb2312 => out.push_str(&encoding_rs::GBK.decode_without_bom_handling(run).0),
            G1::Ksx1001 => out.push_str(&encoding_rs::EUC_KR.decode_without_bom_handling(run).0),
        },
    }
    run.clear();
}

/// Parses an encoding name given in configuration (per-sender assumed charset).
pub fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    match label.trim() {
        "GB18030" | "gb18030" => Some(encoding_rs::GB18030),
        "GBK" | "gbk" | "GB2312" | "gb2312" => Some(encoding_rs::GBK),
        "ISO_IR 192" | "utf-8" | "UTF-8" => Some(encoding_rs::UTF_8),
        other => Encoding::for_label(other.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbk(s: &str) -> Vec<u8> {
        encoding_rs::GBK.encode(s).0.into_owned()
    }

    #[test]
    fn gbk_delimiter_bytes_survive() {
        // 昞 = 95 5C, 奮 = 8A 5E: second bytes are '\' and '^'.
        let raw = gbk("王^昞奮=测试");
        assert!(raw.contains(&0x5c) && raw.contains(&0x5e));
        let cs = CharacterSet::from_raw(b"GBK");
        assert_eq!(decode(&raw, &cs, Assumed::Declared), "王^昞奮=测试");
        let cs = CharacterSet::from_raw(b"GB18030");
        assert_eq!(decode(&raw, &cs, Assumed::Declared), "王^昞奮=测试");
    }

    #[test]
    fn iso2022_ir58_with_escapes() {
        // "Zhang^San=ESC$)A 张^三" — GB2312 designated into G1.
        let mut raw = b"Zhang^San=\x1b$)A".to_vec();
        raw.extend(gbk("张"));
        raw.push(b'^');
        raw.extend(b"\x1b$)A");
        raw.extend(gbk("三"));
        let cs = CharacterSet::from_raw(b"\\ISO 2022 IR 58");
        assert_eq!(decode(&raw, &cs, Assumed::Declared), "Zhang^San=张^三");
    }

    #[test]
    fn override_applies_to_mislabelled_latin1() {
        let raw = gbk("李^四");
        let cs = CharacterSet::from_raw(b"ISO_IR 100");
        assert_eq!(
            decode(&raw, &cs, Assumed::Override(encoding_rs::GBK)),
            "李^四"
        );
        assert_ne!(decode(&raw, &cs, Assumed::Declared), "李^四");
    }

    #[test]
    fn undeclared_falls_back_to_utf8_then_gb18030() {
        let cs = CharacterSet::default();
        assert_eq!(decode("赵".as_bytes(), &cs, Assumed::Declared), "赵");
        assert_eq!(decode(&gbk("赵"), &cs, Assumed::Declared), "赵");
    }

    #[test]
    fn japanese_jis_x_0208() {
        // Yamada^Tarou=ESC$B;3ED(ESC(B^ESC$BB@O:ESC(B — the PS3.5 H.3.1 example.
        let raw = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B";
        let cs = CharacterSet::from_raw(b"\\ISO 2022 IR 87");
        assert_eq!(
            decode(raw, &cs, Assumed::Declared),
            "Yamada^Tarou=山田^太郎"
        );
    }
}

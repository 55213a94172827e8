//! Typed reads of element values: decoded text (charset-aware), numbers in the dataset's
//! byte order. Text is decoded before it is split (see `charset`).

use crate::charset::{self, Assumed, CharacterSet};
use crate::parse::{Dataset, Element, Value};
use crate::vr::Vr;

/// Decoding context of one dataset: its character set, byte order, and the sender's assumption.
#[derive(Debug, Clone)]
pub struct TextContext {
    pub charset: CharacterSet,
    pub assumed: Assumed,
    pub big_endian: bool,
}

impl TextContext {
    pub fn for_dataset(ds: &Dataset, assumed: Assumed, big_endian: bool) -> Self {
        let charset = ds
            .bytes(0x0008_0005)
            .map(CharacterSet::from_raw)
            .unwrap_or_default();
        TextContext {
            charset,
            assumed,
            big_endian,
        }
    }

    /// A nested item may declare its own Specific Character Set (PS3.5 §6.1.2.5.2 ... via
    /// PS3.3 C.12.1.1.2); otherwise it inherits the parent's.
    pub fn for_item(&self, item: &Dataset) -> TextContext {
        match item.bytes(0x0008_0005) {
            Some(raw) => TextContext {
                charset: CharacterSet::from_raw(raw),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// All values of a text element, decoded and split on `\` (for multi-valued VRs), with
    /// padding removed per PS3.5 §6.2 (leading spaces are significant only in LT/ST/UT).
    pub fn strings(&self, el: &Element) -> Vec<String> {
        let Value::Bytes(raw) = &el.value else {
            return Vec::new();
        };
        let text = if el.vr.is_charset_text() {
            charset::decode(raw, &self.charset, self.assumed)
        } else {
            charset::ascii(raw)
        };
        let trim = |s: &str| -> String {
            let s = s.trim_end_matches(['\0', ' ']);
            if matches!(el.vr, Vr::LT | Vr::ST | Vr::UT) {
                s.to_owned()
            } else {
                s.trim_start().to_owned()
            }
        };
        if text.is_empty() {
            return Vec::new();
        }
        if el.vr.is_multi_valued_text() {
            text.split('\\').map(trim).collect()
        } else {
            vec![trim(&text)]
        }
    }

    /// The first value of a text element, if present and non-empty.
    pub fn string(&self, ds: &Dataset, tag: u32) -> Option<String> {
        let el = ds.get(tag)?;
        self.strings(el)
            .into_iter()
            .next()
            .filter(|s| !s.is_empty())
    }

    pub fn all_strings(&self, ds: &Dataset, tag: u32) -> Vec<String> {
        ds.get(tag).map(|el| self.strings(el)).unwrap_or_default()
    }

    /// Binary integers (US, SS, UL, SL, UV, SV) and IS, as i64.
    pub fn ints(&self, el: &Element) -> Vec<i64> {
        let Value::Bytes(raw) = &el.value else {
            return Vec::new();
        };
        let be = self.big_endian;
        macro_rules! chunks {
            ($n:expr, $t:ty) => {
                raw.chunks_exact($n)
                    .map(|c| {
                        let mut b = [0u8; $n];
                        b.copy_from_slice(c);
                        (if be {
                            <$t>::from_be_bytes(b)
                        } else {
                            <$t>::from_le_bytes(b)
                        }) as i64
                    })
                    .collect()
            };
        }
        match el.vr {
            Vr::US => chunks!(2, u16),
            Vr::SS => chunks!(2, i16),
            Vr::UL => chunks!(4, u32),
            Vr::SL => chunks!(4, i32),
            Vr::UV => chunks!(8, u64),
            Vr::SV => chunks!(8, i64),
            Vr::IS => self
                .strings(el)
                .iter()
                .filter_map(|s| s.trim().parse::<i64>().ok())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn int(&self, ds: &Dataset, tag: u32) -> Option<i64> {
        ds.get(tag).and_then(|el| self.ints(el).into_iter().next())
    }

    /// FL, FD and DS as f64.
    pub fn floats(&self, el: &Element) -> Vec<f64> {
        let Value::Bytes(raw) = &el.value else {
            return Vec::new();
        };
        let be = self.big_endian;
        match el.vr {
            Vr::FL => raw
                .chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    f64::from(if be {
                        f32::from_be_bytes(b)
                    } else {
                        f32::from_le_bytes(b)
                    })
                })
                .collect(),
            Vr::FD => raw
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    if be {
                        f64::from_be_bytes(b)
                    } else {
                        f64::from_le_bytes(b)
                    }
                })
                .collect(),
            Vr::DS => self
                .strings(el)
                .iter()
                .filter_map(|s| s.trim().parse::<f64>().ok())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn float(&self, ds: &Dataset, tag: u32) -> Option<f64> {
        ds.get(tag)
            .and_then(|el| self.floats(el).into_iter().next())
    }

    pub fn floats_of(&self, ds: &Dataset, tag: u32) -> Vec<f64> {
        ds.get(tag).map(|el| self.floats(el)).unwrap_or_default()
    }
}

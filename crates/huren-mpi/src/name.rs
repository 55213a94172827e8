//! Person names compared by characters and by sound.
//!
//! Hospitals write the same person's name in different ways: 张伟 at one, `ZHANG^WEI` (pinyin,
//! no characters) at another, 张玮 (a homophone typed by mistake) at a third. Comparing by
//! pinyin bridges these. Pinyin is toneless here (registration systems drop tones), and every
//! reading of a 多音字 counts: 单 is `dan` in a dictionary's first reading but `shan` as a
//! surname, 曾 is `ceng`/`zeng`, 解 is `jie`/`xie`. A Latin name matches a character name when
//! some choice of readings spells it.

use pinyin::ToPinyinMulti;

/// A person's name as records carry it: the ideographic group (characters) and/or the
/// alphabetic group (Latin, usually pinyin). DICOM PN `Zhang^Wei=张^伟` gives both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonName {
    pub ideographic: Option<String>,
    pub alphabetic: Option<String>,
}

impl PersonName {
    /// From a DICOM PN value (`Alphabetic=Ideographic=Phonetic`) or a plain name: a value with
    /// Han characters and no `=` is ideographic, anything else alphabetic.
    pub fn from_dicom(pn: &str) -> PersonName {
        let mut groups = pn.split('=');
        let first = groups.next().unwrap_or("").trim();
        let second = groups.next().map(str::trim).unwrap_or("");
        let (alpha, ideo) = if second.is_empty() && first.chars().any(is_han) {
            ("", first)
        } else {
            (first, second)
        };
        let keep = |s: &str| (!s.trim_matches(['^', ' ']).is_empty()).then(|| s.to_owned());
        PersonName {
            ideographic: keep(ideo),
            alphabetic: keep(alpha),
        }
    }

    /// The characters of the ideographic group, separators removed: Han characters, and
    /// letters or digits as written (a registrar's `王2` is not `王3`).
    pub fn characters(&self) -> Vec<char> {
        let chars: Vec<char> = self
            .ideographic
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| is_han(*c) || c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        if chars.iter().any(|c| is_han(*c)) {
            chars
        } else {
            Vec::new()
        }
    }

    /// The alphabetic group as lower-case letters only (`ZHANG^Wei` → `zhangwei`).
    pub fn latin(&self) -> String {
        self.alphabetic
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_alphabetic)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    }

    /// Every toneless reading of each character.
    pub fn readings(&self) -> Vec<Vec<&'static str>> {
        self.characters().into_iter().map(readings).collect()
    }

    /// The name's sound with each character's first reading (`张伟` → `zhangwei`), or the Latin
    /// letters when it has no characters: the key name frequencies are counted by.
    pub fn sound_key(&self) -> String {
        let chars = self.characters();
        if chars.is_empty() {
            self.latin()
        } else {
            chars
                .into_iter()
                .map(|c| match readings(c).first() {
                    Some(r) => (*r).to_owned(),
                    None => c.to_string(),
                })
                .collect()
        }
    }

    /// The first letters the name can start with (for blocking): the first reading letters of
    /// the first character, else the first Latin letter.
    pub fn initials(&self) -> Vec<char> {
        let chars = self.characters();
        let mut out: Vec<char> = match chars.first() {
            Some(c) => readings(*c)
                .into_iter()
                .filter_map(|r| r.chars().next())
                .collect(),
            None => self.latin().chars().next().into_iter().collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Toneless readings of one character, the dictionary's first reading first; a character
/// without pinyin reads as itself.
pub fn readings(c: char) -> Vec<&'static str> {
    match c.to_pinyin_multi() {
        Some(multi) => {
            let mut v: Vec<&'static str> = multi.into_iter().map(|p| p.plain()).collect();
            // Tones differ, plain spellings repeat (e.g. 长 cháng/zhǎng are distinct; 好 hǎo/hào
            // are not).
            let mut seen = Vec::with_capacity(v.len());
            v.retain(|r| {
                let new = !seen.contains(r);
                seen.push(*r);
                new
            });
            v
        }
        None => Vec::new(),
    }
}

/// How two names relate, from strongest to weakest evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    /// Same characters (or, with no characters on either side, the same Latin letters).
    SameCharacters,
    /// Same sound: homophone characters, or a Latin name spelled by some reading choice.
    SamePinyin,
    /// One syllable off in a name of three or more characters, or one letter off in Latin.
    Similar,
    Different,
    /// One side has no name.
    Unknown,
}

/// Whether some choice of readings spells `latin` exactly (syllables concatenated).
fn spells(readings: &[Vec<&str>], latin: &str) -> bool {
    // Positions in `latin` reachable after k characters.
    let mut reachable = vec![false; latin.len() + 1];
    reachable[0] = true;
    for rs in readings {
        let mut next = vec![false; latin.len() + 1];
        for (pos, ok) in reachable.iter().enumerate() {
            if !ok {
                continue;
            }
            for r in rs {
                if latin[pos..].starts_with(r) {
                    next[pos + r.len()] = true;
                }
            }
        }
        reachable = next;
    }
    reachable[latin.len()]
}

fn share_reading(a: &[&str], b: &[&str]) -> bool {
    a.iter().any(|r| b.contains(r))
}

fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let (mut i, mut j, mut edits) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            i += 1;
            j += 1;
            continue;
        }
        edits += 1;
        if edits > 1 {
            return false;
        }
        if a.len() > b.len() {
            i += 1;
        } else if b.len() > a.len() {
            j += 1;
        } else if i + 1 < a.len() && a[i] == b[j + 1] && a[i + 1] == b[j] {
            // Adjacent transposition counts as one edit.
            i += 2;
            j += 2;
        } else {
            i += 1;
            j += 1;
        }
    }
    edits + (a.len() - i) + (b.len() - j) <= 1
}

/// Compares two names by characters, then by sound.
pub fn compare(a: &PersonName, b: &PersonName) -> NameMatch {
    let (ca, cb) = (a.characters(), b.characters());
    let (la, lb) = (a.latin(), b.latin());
    if !ca.is_empty() && !cb.is_empty() {
        if ca == cb {
            return NameMatch::SameCharacters;
        }
        if ca.len() != cb.len() {
            return NameMatch::Different;
        }
        let (ra, rb) = (a.readings(), b.readings());
        let differing: Vec<(char, char)> = ca
            .iter()
            .zip(&cb)
            .zip(ra.iter().zip(&rb))
            .filter(|((x, y), (rx, ry))| x != y && !share_reading(rx, ry))
            .map(|((x, y), _)| (*x, *y))
            .collect();
        // A digit or letter written differently is a different name, not a typo'd syllable.
        if differing.iter().any(|(x, y)| !is_han(*x) || !is_han(*y)) {
            return NameMatch::Different;
        }
        return match differing.len() {
            0 => NameMatch::SamePinyin,
            // The surname must agree in sound; one given-name syllable may be a typo.
            1 if ca.len() >= 3 && (ca[0] == cb[0] || share_reading(&ra[0], &rb[0])) => {
                NameMatch::Similar
            }
            _ => NameMatch::Different,
        };
    }
    if !ca.is_empty() && !lb.is_empty() {
        return by_sound(&a.readings(), &lb);
    }
    if !cb.is_empty() && !la.is_empty() {
        return by_sound(&b.readings(), &la);
    }
    if !la.is_empty() && !lb.is_empty() {
        return if la == lb {
            NameMatch::SameCharacters
        } else if one_edit_apart(&la, &lb) {
            NameMatch::Similar
        } else {
            NameMatch::Different
        };
    }
    NameMatch::Unknown
}

fn by_sound(readings: &[Vec<&str>], latin: &str) -> NameMatch {
    if spells(readings, latin) {
        return NameMatch::SamePinyin;
    }
    // One letter off against the first readings (a typo in the Latin spelling).
    let first: String = readings.iter().filter_map(|r| r.first().copied()).collect();
    if one_edit_apart(&first, latin) {
        NameMatch::Similar
    } else {
        NameMatch::Different
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(pn: &str) -> PersonName {
        PersonName::from_dicom(pn)
    }

    #[test]
    fn dicom_groups_and_plain_names() {
        let p = n("Zhang^Wei=张^伟");
        assert_eq!(p.ideographic.as_deref(), Some("张^伟"));
        assert_eq!(p.latin(), "zhangwei");
        assert_eq!(n("张伟").ideographic.as_deref(), Some("张伟"));
        assert_eq!(n("ZHANG WEI").latin(), "zhangwei");
        assert_eq!(n("=王^芳").characters(), vec!['王', '芳']);
    }

    #[test]
    fn characters_then_sound() {
        assert_eq!(
            compare(&n("张伟"), &n("Zhang^Wei=张^伟")),
            NameMatch::SameCharacters
        );
        assert_eq!(compare(&n("张伟"), &n("张玮")), NameMatch::SamePinyin);
        assert_eq!(compare(&n("张伟"), &n("ZHANG^WEI")), NameMatch::SamePinyin);
        assert_eq!(compare(&n("王小明"), &n("王小红")), NameMatch::Similar);
        assert_eq!(compare(&n("张伟"), &n("李伟")), NameMatch::Different);
        assert_eq!(compare(&n("张伟"), &n("ZHANG^WIE")), NameMatch::Similar);
        assert_eq!(compare(&n(""), &n("张伟")), NameMatch::Unknown);
        // Digits and letters written in the ideographic group count as written.
        assert_eq!(
            compare(&n("Wang^12=王^12"), &n("Wang^13=王^13")),
            NameMatch::Different
        );
        assert_eq!(compare(&n("王12"), &n("王12")), NameMatch::SameCharacters);
        assert_eq!(n("Wang^12=王^12").sound_key(), "wang12");
    }

    #[test]
    fn every_reading_of_a_heteronym_counts() {
        // 单 reads dan first; as a surname it is shan.
        assert!(readings('单').contains(&"shan"));
        assert_eq!(compare(&n("单雄"), &n("SHAN^XIONG")), NameMatch::SamePinyin);
        assert_eq!(compare(&n("曾强"), &n("Zeng^Qiang")), NameMatch::SamePinyin);
        assert_eq!(compare(&n("解放"), &n("XIE^FANG")), NameMatch::SamePinyin);
        assert_eq!(n("曾强").initials(), vec!['c', 'z']);
    }
}

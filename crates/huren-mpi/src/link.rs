//! Whether two patient records are the same person: link, review, or no link, with reasons.
//!
//! Rules, in order (ARCHITECTURE.md, "Persons"):
//! 1. Different valid national numbers of the same document → never linked.
//! 2. The same valid number → linked, if the number agrees with *both* records' birth date and
//!    sex; otherwise review (a newborn under the mother's number, an elder under a relative's).
//! 3. Otherwise a score, the sum of the evidence weights below (log-likelihood style: positive
//!    for agreement that is unlikely between different people, negative for disagreement that
//!    is unlikely within one person): link at or above [`Thresholds::link`], review at or above
//!    [`Thresholds::review`].
//!
//! | evidence | agree | near | disagree |
//! |---|---|---|---|
//! | name | same characters +6, same pinyin +4; +3 more if the name's sound is rare (≤ 3 records in the index), +1.5 if uncommon (≤ 10) | one syllable / letter off +1 | −6 |
//! | birth date | +5 | one digit changed or two adjacent swapped +1 | −6 |
//! | sex | +0.5 | | −4 |
//! | phone | +2.5 (families share phones: weak) | | 0 (phones change) |
//! | health card / insurance number | +8 | | −2 |
//!
//! A common name with a matching birth date and sex (11.5) stays below the link threshold on
//! purpose: common names share birthdays across a region of millions; a phone or card number
//! tips it. A rare name with the same birth date and sex links (14.5): agreement on something
//! rare is strong evidence (Fellegi–Sunter: the weight of agreement grows as the chance of
//! agreeing by accident falls).

use crate::id::{Consistency, NationalId, Sex};
use crate::name::{NameMatch, PersonName, compare};
use std::collections::HashMap;
use time::Date;

/// How many records in the index carry each name sound ([`PersonName::sound_key`]). Without
/// counts (the default) no name is treated as rare.
#[derive(Debug, Clone, Default)]
pub struct NameFrequencies {
    counts: HashMap<String, u32>,
}

impl NameFrequencies {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a PersonName>) -> Self {
        let mut counts = HashMap::new();
        for n in names {
            let k = n.sound_key();
            if !k.is_empty() {
                *counts.entry(k).or_insert(0) += 1;
            }
        }
        NameFrequencies { counts }
    }

    /// Sets how many records carry `name`'s sound (an index answers this with one count).
    pub fn set_count(&mut self, name: &PersonName, count: u32) {
        let k = name.sound_key();
        if !k.is_empty() {
            self.counts.insert(k, count);
        }
    }

    fn count(&self, n: &PersonName) -> u32 {
        self.counts.get(&n.sound_key()).copied().unwrap_or(0)
    }

    /// The extra weight of agreeing on this pair's names: the more common of the two decides.
    fn rarity_bonus(&self, a: &PersonName, b: &PersonName) -> f32 {
        match self.count(a).max(self.count(b)) {
            0 => 0.0,
            1..=3 => 3.0,
            4..=10 => 1.5,
            _ => 0.0,
        }
    }
}

/// What the rules look at in one patient record.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub name: PersonName,
    pub birth_date: Option<Date>,
    pub sex: Option<Sex>,
    pub phone: Option<String>,
    /// A valid national number (resident ID, HMT residence permit, foreign permanent card).
    pub national_id: Option<NationalId>,
    /// Health card or insurance number, already qualified by its system.
    pub card: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub link: f32,
    pub review: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            link: 12.0,
            review: 7.0,
        }
    }
}

/// Why a pair was linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRule {
    SameNationalId,
    Score,
}

/// Why a pair needs a person to look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewReason {
    /// The same national number, but it disagrees with (or cannot be checked against) one
    /// record's birth date or sex.
    NationalIdInconsistent,
    /// A score between the thresholds.
    PossibleMatch,
}

/// Why a pair was not linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLinkReason {
    DifferentNationalIds,
    Score,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Link { rule: LinkRule, score: f32 },
    Review { reason: ReviewReason, score: f32 },
    NoLink { reason: NoLinkReason, score: f32 },
}

impl Decision {
    pub fn score(&self) -> f32 {
        match self {
            Decision::Link { score, .. }
            | Decision::Review { score, .. }
            | Decision::NoLink { score, .. } => *score,
        }
    }
}

/// One digit changed, or two adjacent digits swapped (YYYYMMDD).
fn near_date(a: Date, b: Date) -> bool {
    let f = huren_types::day::da;
    typing_slip(&f(a), &f(b))
}

/// Two strings of the same length a typing slip apart: one character changed, or two
/// neighbouring characters swapped (how the rules, and the stewards' page, read birth dates).
pub fn typing_slip(x: &str, y: &str) -> bool {
    if x.len() != y.len() {
        return false;
    }
    let diff: Vec<usize> = x
        .bytes()
        .zip(y.bytes())
        .enumerate()
        .filter(|(_, (p, q))| p != q)
        .map(|(i, _)| i)
        .collect();
    match diff.as_slice() {
        [_] => true,
        [i, j] if *j == i + 1 => {
            x.as_bytes()[*i] == y.as_bytes()[*j] && x.as_bytes()[*j] == y.as_bytes()[*i]
        }
        _ => false,
    }
}

/// The evidence score of two records (rule 3), without the identity-number rules.
pub fn score(a: &Record, b: &Record, names: &NameFrequencies) -> f32 {
    let mut s = match compare(&a.name, &b.name) {
        NameMatch::SameCharacters => 6.0 + names.rarity_bonus(&a.name, &b.name),
        NameMatch::SamePinyin => 4.0 + names.rarity_bonus(&a.name, &b.name),
        NameMatch::Similar => 1.0,
        NameMatch::Different => -6.0,
        NameMatch::Unknown => 0.0,
    };
    s += match (a.birth_date, b.birth_date) {
        (Some(x), Some(y)) if x == y => 5.0,
        (Some(x), Some(y)) if near_date(x, y) => 1.0,
        (Some(_), Some(_)) => -6.0,
        _ => 0.0,
    };
    s += match (a.sex, b.sex) {
        (Some(x), Some(y)) if x == y => 0.5,
        (Some(_), Some(_)) => -4.0,
        _ => 0.0,
    };
    if let (Some(x), Some(y)) = (&a.phone, &b.phone)
        && x == y
    {
        s += 2.5;
    }
    s += match (&a.card, &b.card) {
        (Some(x), Some(y)) if x == y => 8.0,
        (Some(_), Some(_)) => -2.0,
        _ => 0.0,
    };
    s
}

/// Link, review or no link for two records (rules 1–3).
pub fn decide(a: &Record, b: &Record, t: &Thresholds, names: &NameFrequencies) -> Decision {
    let score = score(a, b, names);
    if let (Some(x), Some(y)) = (&a.national_id, &b.national_id)
        && x.kind() == y.kind()
    {
        if x != y {
            return Decision::NoLink {
                reason: NoLinkReason::DifferentNationalIds,
                score,
            };
        }
        let agrees = |r: &Record, id: &NationalId| {
            id.consistency(r.birth_date, r.sex) == Consistency::Consistent
        };
        return if agrees(a, x) && agrees(b, y) {
            Decision::Link {
                rule: LinkRule::SameNationalId,
                score,
            }
        } else {
            Decision::Review {
                reason: ReviewReason::NationalIdInconsistent,
                score,
            }
        };
    }
    if score >= t.link {
        Decision::Link {
            rule: LinkRule::Score,
            score,
        }
    } else if score >= t.review {
        Decision::Review {
            reason: ReviewReason::PossibleMatch,
            score,
        }
    } else {
        Decision::NoLink {
            reason: NoLinkReason::Score,
            score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Month;

    #[test]
    fn a_typing_slip_is_one_character_changed_or_two_neighbours_swapped() {
        assert!(typing_slip("19491231", "19491213"));
        assert!(typing_slip("19491231", "19491230"));
        assert!(!typing_slip("19491231", "19491231"));
        assert!(!typing_slip("19491231", "19500101"));
        assert!(!typing_slip("19491231", "1949123"));
    }

    fn d(y: i32, m: u8, day: u8) -> Date {
        Date::from_calendar_date(y, Month::try_from(m).expect("month"), day).expect("date")
    }

    fn rec(name: &str, born: Date, sex: Sex) -> Record {
        Record {
            name: PersonName::from_dicom(name),
            birth_date: Some(born),
            sex: Some(sex),
            ..Record::default()
        }
    }

    fn id(s: &str) -> NationalId {
        NationalId::parse(s, d(2026, 11, 25)).expect("valid id")
    }

    #[test]
    fn same_consistent_number_links_whatever_the_names() {
        let mut a = rec("张伟", d(1949, 12, 31), Sex::Female);
        let mut b = rec("ZHANG^WEI", d(1949, 12, 31), Sex::Female);
        a.national_id = Some(id("11010519491231002X"));
        b.national_id = Some(id("110105491231002"));
        assert!(matches!(
            decide(&a, &b, &Thresholds::default(), &NameFrequencies::default()),
            Decision::Link {
                rule: LinkRule::SameNationalId,
                ..
            }
        ));
    }

    #[test]
    fn newborn_under_the_mothers_number_goes_to_review() {
        let mut mother = rec("李娜", d(1949, 12, 31), Sex::Female);
        let mut baby = rec("李娜之子", d(2026, 3, 1), Sex::Male);
        mother.national_id = Some(id("11010519491231002X"));
        baby.national_id = mother.national_id.clone();
        assert!(matches!(
            decide(
                &mother,
                &baby,
                &Thresholds::default(),
                &NameFrequencies::default()
            ),
            Decision::Review {
                reason: ReviewReason::NationalIdInconsistent,
                ..
            }
        ));
    }

    #[test]
    fn different_valid_numbers_never_link() {
        let mut a = rec("王芳", d(1990, 1, 1), Sex::Female);
        let mut b = a.clone();
        a.phone = Some("13800001234".into());
        b.phone = a.phone.clone();
        a.card = Some("HC1".into());
        b.card = Some("HC1".into());
        let first17 = *b"11010519900101002";
        let c = crate::id::check_character(&first17);
        a.national_id = Some(id(&format!("11010519900101002{c}")));
        let first17 = *b"11010519900101004";
        let c = crate::id::check_character(&first17);
        b.national_id = Some(id(&format!("11010519900101004{c}")));
        assert!(score(&a, &b, &NameFrequencies::default()) > 20.0);
        assert!(matches!(
            decide(&a, &b, &Thresholds::default(), &NameFrequencies::default()),
            Decision::NoLink {
                reason: NoLinkReason::DifferentNationalIds,
                ..
            }
        ));
    }

    #[test]
    fn demographics_alone_are_reviewed_and_a_phone_links() {
        let a = rec("王伟", d(1980, 5, 6), Sex::Male);
        let mut b = rec("Wang^Wei=王^伟", d(1980, 5, 6), Sex::Male);
        assert!(matches!(
            decide(&a, &b, &Thresholds::default(), &NameFrequencies::default()),
            Decision::Review {
                reason: ReviewReason::PossibleMatch,
                ..
            }
        ));
        let mut a = a;
        a.phone = Some("13800001234".into());
        b.phone = Some("13800001234".into());
        assert!(matches!(
            decide(&a, &b, &Thresholds::default(), &NameFrequencies::default()),
            Decision::Link {
                rule: LinkRule::Score,
                ..
            }
        ));
        // A swapped day in the birth date is near, not a match.
        assert!(near_date(d(1980, 5, 12), d(1980, 5, 21)));
        assert!(near_date(d(1980, 12, 1), d(1980, 12, 10)));
        assert!(near_date(d(1980, 5, 12), d(1981, 5, 12)));
        assert!(!near_date(d(1980, 5, 12), d(1980, 5, 12)));
        assert!(!near_date(d(1980, 5, 12), d(1990, 6, 12)));
    }
}

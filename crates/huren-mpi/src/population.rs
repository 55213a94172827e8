//! A synthetic population with ground truth, and the measurement of link quality on it.
//!
//! People get names from common surnames (including heteronym surnames read their surname way:
//! 单 shan, 曾 zeng, 解 xie, 查 zha, 区 ou, 翟 zhai, 仇 qiu, 朴 piao) and common given-name
//! characters, a birth date, a sex, a valid resident number consistent with both, often a phone
//! and sometimes a regional health card. Each person has records at one to three institutions,
//! each written the way hospitals really do: characters only, pinyin only or both; homophone
//! and other typos; transposed birth-date digits; missing numbers, dates, sexes and phones;
//! phones shared within families; newborns registered under the mother's number; elders under
//! a relative's. Nothing here is a real person.

use crate::id::{NationalId, Sex, check_character};
use crate::link::{Decision, LinkRule, NameFrequencies, Record, Thresholds, decide};
use crate::name::{PersonName, readings};
use std::collections::{HashMap, HashSet};
use time::{Date, Duration, Month};

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Surnames with the reading used for them (frequency-weighted by repetition of the common
/// ones).
const SURNAMES: &[(&str, &str)] = &[
    ("王", "wang"),
    ("王", "wang"),
    ("王", "wang"),
    ("李", "li"),
    ("李", "li"),
    ("李", "li"),
    ("张", "zhang"),
    ("张", "zhang"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("高", "gao"),
    ("林", "lin"),
    ("罗", "luo"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("彭", "peng"),
    ("曾", "zeng"),
    ("肖", "xiao"),
    ("田", "tian"),
    ("董", "dong"),
    ("袁", "yuan"),
    ("潘", "pan"),
    ("蒋", "jiang"),
    ("蔡", "cai"),
    ("余", "yu"),
    ("杜", "du"),
    ("叶", "ye"),
    ("程", "cheng"),
    ("苏", "su"),
    ("魏", "wei"),
    ("吕", "lv"),
    ("丁", "ding"),
    ("任", "ren"),
    ("沈", "shen"),
    ("姚", "yao"),
    ("卢", "lu"),
    ("姜", "jiang"),
    ("崔", "cui"),
    ("钟", "zhong"),
    ("谭", "tan"),
    ("陆", "lu"),
    ("汪", "wang"),
    ("范", "fan"),
    ("单", "shan"),
    ("解", "xie"),
    ("查", "zha"),
    ("区", "ou"),
    ("翟", "zhai"),
    ("仇", "qiu"),
    ("朴", "piao"),
];

/// Given-name characters; several share a sound (伟/玮/炜/薇/维, 静/晶/婧, 敏/民, 丽/莉/俐,
/// 芳/方, 杰/洁, 婷/庭, 鹏/朋, 涛/韬), which is what homophone typos are made of.
const GIVEN: &[char] = &[
    '伟', '玮', '炜', '薇', '维', '芳', '方', '娜', '敏', '民', '静', '晶', '婧', '丽', '莉', '俐',
    '强', '磊', '军', '洋', '勇', '艳', '杰', '洁', '娟', '涛', '韬', '明', '超', '秀', '霞', '平',
    '刚', '桂', '英', '华', '玉', '兰', '萍', '红', '鹏', '朋', '辉', '玲', '建', '国', '文', '斌',
    '宇', '浩', '凯', '健', '俊', '帆', '旭', '宁', '龙', '欣', '佳', '雪', '梅', '琳', '燕', '慧',
    '美', '倩', '婷', '庭', '海', '波', '亮', '峰', '毅', '鑫', '晓', '晨', '阳', '春', '乐', '长',
];

/// The truth about one synthetic person.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    /// The readings a careful registrar would write in pinyin.
    pub latin: String,
    pub birth_date: Date,
    pub sex: Sex,
    pub national_id: NationalId,
    pub phone: Option<String>,
    pub card: Option<String>,
}

/// One institution's record of a person, as the matcher sees it, with the truth beside it.
#[derive(Debug, Clone)]
pub struct PatientRecord {
    pub person: usize,
    pub institution: u8,
    pub record: Record,
}

pub struct Population {
    pub people: Vec<Person>,
    pub records: Vec<PatientRecord>,
}

fn resident_id(rng: &mut Rng, birth: Date, sex: Sex, serial: usize) -> NationalId {
    // 重庆 (50) and 四川 (51) area codes; sequence unique per person, sex in its last digit.
    let area = *rng.pick(&["500101", "500112", "510104", "510107", "500235"]);
    let seq = (serial % 500) * 2 + usize::from(sex == Sex::Male);
    let first17 = format!(
        "{area}{:04}{:02}{:02}{seq:03}",
        birth.year(),
        u8::from(birth.month()),
        birth.day()
    );
    let mut digits = [0u8; 17];
    digits.copy_from_slice(first17.as_bytes());
    let full = format!("{first17}{}", check_character(&digits));
    NationalId::parse(&full, birth).unwrap_or_else(|_| unreachable_id())
}

#[allow(clippy::panic)]
fn unreachable_id() -> NationalId {
    // Every number built above has a valid area, date and check character.
    panic!("generated resident number did not validate")
}

fn first_reading(c: char) -> &'static str {
    readings(c).first().copied().unwrap_or("")
}

/// Generates `n` people (about 1.5% newborns with a mother among them) and their records at
/// three institutions. The same `seed` gives the same population.
pub fn generate(n: usize, seed: u64, today: Date) -> Population {
    let mut rng = Rng(seed);
    let mut people: Vec<Person> = Vec::with_capacity(n);
    let mut mothers: Vec<Option<usize>> = Vec::with_capacity(n);
    let mut surnames: Vec<usize> = Vec::with_capacity(n);
    let mut taken: HashSet<String> = HashSet::new();
    let mut phone_serial = 0u64;
    while people.len() < n {
        let k = people.len();
        let surname_idx = rng.below(SURNAMES.len());
        let given: Vec<char> = (0..if rng.chance(0.7) { 2 } else { 1 })
            .map(|_| *rng.pick(GIVEN))
            .collect();
        let sex = if rng.chance(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        // Newborns need a mother already generated: a woman aged 20–45.
        let candidates_mother = (k > 100 && rng.chance(0.015))
            .then(|| {
                (0..50).map(|_| rng.below(k)).find(|&m| {
                    let p: &Person = &people[m];
                    let age = today.year() - p.birth_date.year();
                    p.sex == Sex::Female && (20..=45).contains(&age)
                })
            })
            .flatten();
        let birth = match candidates_mother {
            Some(_) => today - Duration::days(rng.below(300) as i64 + 1),
            None => {
                let days = rng.below(90 * 365) as i64 + 1;
                today - Duration::days(days)
            }
        };
        let national_id = resident_id(&mut rng, birth, sex, k);
        if !taken.insert(national_id.as_str().to_owned()) {
            continue;
        }
        // A newborn takes the mother's surname half the time (else the father's, drawn above).
        let surname_idx = match candidates_mother {
            Some(m) if rng.chance(0.5) => surnames[m],
            _ => surname_idx,
        };
        let (surname, surname_reading) = SURNAMES[surname_idx];
        let name = format!("{surname}{}", given.iter().collect::<String>());
        let latin = format!(
            "{}{}",
            surname_reading,
            given.iter().map(|c| first_reading(*c)).collect::<String>()
        );
        let phone = match candidates_mother {
            Some(m) => people[m].phone.clone(),
            None if rng.chance(0.05) && k > 0 => people[rng.below(k)].phone.clone(),
            None if rng.chance(0.8) => {
                phone_serial += 1;
                Some(format!("13{:09}", (phone_serial * 7_919) % 1_000_000_000))
            }
            None => None,
        };
        let card = rng
            .chance(0.3)
            .then(|| format!("HC{:010}", rng.next() % 10_000_000_000));
        people.push(Person {
            name,
            latin,
            birth_date: birth,
            sex,
            national_id,
            phone,
            card,
        });
        mothers.push(candidates_mother);
        surnames.push(surname_idx);
    }

    let mut records = Vec::new();
    for (k, p) in people.iter().enumerate() {
        let mut sites: Vec<u8> = (0..3u8)
            .filter(|i| rng.chance([0.7, 0.5, 0.4][usize::from(*i)]))
            .collect();
        if sites.is_empty() {
            sites.push(rng.below(3) as u8);
        }
        for site in sites {
            records.push(PatientRecord {
                person: k,
                institution: site,
                record: written(&mut rng, p, today),
            });
        }
        // A newborn's first record, at the birth hospital, under the mother's number; some
        // elders are registered under a relative's.
        let borrowed = match mothers[k] {
            Some(m) => Some(m),
            None if today.year() - p.birth_date.year() > 75 && rng.chance(0.1) && k > 0 => {
                Some(rng.below(k))
            }
            None => None,
        };
        if let Some(owner) = borrowed {
            let mut r = written(&mut rng, p, today);
            r.national_id = Some(people[owner].national_id.clone());
            records.push(PatientRecord {
                person: k,
                institution: rng.below(3) as u8,
                record: r,
            });
        }
    }
    Population { people, records }
}

/// One record of `p` as a registrar would have typed it.
fn written(rng: &mut Rng, p: &Person, today: Date) -> Record {
    let mut chars: Vec<char> = p.name.chars().collect();
    if chars.len() > 1 && rng.chance(0.04) {
        // Homophone typo in the given name.
        let i = 1 + rng.below(chars.len() - 1);
        let sound = readings(chars[i]);
        if let Some(c) = GIVEN
            .iter()
            .find(|g| **g != chars[i] && readings(**g).iter().any(|r| sound.contains(r)))
        {
            chars[i] = *c;
        }
    } else if chars.len() > 2 && rng.chance(0.01) {
        // A different character altogether.
        let i = 1 + rng.below(chars.len() - 1);
        chars[i] = *rng.pick(GIVEN);
    }
    let han: String = chars.iter().collect();
    let form = rng.below(100);
    let name = if form < 75 {
        PersonName {
            ideographic: Some(han),
            alphabetic: None,
        }
    } else if form < 90 {
        PersonName {
            ideographic: None,
            alphabetic: Some(p.latin.to_uppercase()),
        }
    } else {
        PersonName {
            ideographic: Some(han),
            alphabetic: Some(p.latin.clone()),
        }
    };
    let birth_date = if rng.chance(0.03) {
        None
    } else if rng.chance(0.02) {
        Some(typo_date(rng, p.birth_date, today))
    } else {
        Some(p.birth_date)
    };
    let phone = match &p.phone {
        Some(ph) if rng.chance(0.7) => Some(if rng.chance(0.1) {
            format!("139{:08}", rng.next() % 100_000_000)
        } else {
            ph.clone()
        }),
        _ => None,
    };
    Record {
        name,
        birth_date,
        sex: (!rng.chance(0.05)).then_some(p.sex),
        phone,
        national_id: rng.chance(0.65).then(|| p.national_id.clone()),
        card: p.card.clone().filter(|_| rng.chance(0.8)),
    }
}

/// Two adjacent digits of MMDD swapped, or one digit of the year changed, when that is still a
/// real date.
fn typo_date(rng: &mut Rng, d: Date, today: Date) -> Date {
    let s = huren_types::day::da(d);
    let mut b = s.into_bytes();
    if rng.chance(0.5) {
        let i = 4 + rng.below(3);
        b.swap(i, i + 1);
    } else {
        b[3] = b'0' + ((b[3] - b'0' + 1) % 10);
    }
    let t = String::from_utf8(b).unwrap_or_default();
    let parse = || -> Option<Date> {
        Date::from_calendar_date(
            t[0..4].parse().ok()?,
            Month::try_from(t[4..6].parse::<u8>().ok()?).ok()?,
            t[6..8].parse().ok()?,
        )
        .ok()
    };
    parse().filter(|x| *x <= today).unwrap_or(d)
}

/// Link quality on a population: pairwise precision and recall of automatic links, the review
/// queue, and the safety counts that must be zero.
#[derive(Debug, Clone, Default)]
pub struct Quality {
    pub people: usize,
    pub records: usize,
    pub candidate_pairs: usize,
    pub true_pairs: usize,
    pub linked_pairs: usize,
    pub correct_linked_pairs: usize,
    pub review_pairs: usize,
    /// Links refused because they would join two different valid numbers or a number with a
    /// record it disagrees with (they went to review instead).
    pub blocked_merges: usize,
    /// Must be 0: persons holding two different valid numbers of one document.
    pub persons_with_two_numbers: usize,
    /// Must be 0: persons joining records of different people through a shared number.
    pub links_through_a_borrowed_number: usize,
}

impl Quality {
    pub fn precision(&self) -> f64 {
        if self.linked_pairs == 0 {
            1.0
        } else {
            self.correct_linked_pairs as f64 / self.linked_pairs as f64
        }
    }
    pub fn recall(&self) -> f64 {
        if self.true_pairs == 0 {
            1.0
        } else {
            self.correct_linked_pairs as f64 / self.true_pairs as f64
        }
    }
}

struct Sets {
    parent: Vec<usize>,
    /// Per root: (document system, number, agrees with its record).
    numbers: Vec<Vec<(&'static str, String, bool)>>,
}

impl Sets {
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    /// Joins two persons unless that would put two different numbers of one document, or a
    /// number with a record that disagrees with it, into one person.
    fn join(&mut self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        let conflict = self.numbers[ra].iter().any(|(sa, va, ca)| {
            self.numbers[rb]
                .iter()
                .any(|(sb, vb, cb)| sa == sb && (va != vb || ca != cb))
        });
        if conflict {
            return false;
        }
        let moved = std::mem::take(&mut self.numbers[rb]);
        self.numbers[ra].extend(moved);
        self.parent[rb] = ra;
        true
    }
}

/// Blocking keys: records share a key when they could plausibly be the same person.
fn keys(r: &Record) -> Vec<String> {
    let mut k = Vec::new();
    if let Some(id) = &r.national_id {
        k.push(format!("id:{}", id.as_str()));
    }
    if let Some(p) = &r.phone {
        k.push(format!("ph:{p}"));
    }
    if let Some(c) = &r.card {
        k.push(format!("hc:{c}"));
    }
    let year = r.birth_date.map_or(0, |d| d.year());
    for i in r.name.initials() {
        k.push(format!("nb:{i}:{year}"));
    }
    let sound = r.name.sound_key();
    if !sound.is_empty() {
        k.push(format!("nm:{sound}"));
    }
    k
}

/// Runs the link rules over every candidate pair and reports quality against the truth.
/// Deterministic links go first, then score links from the highest score down; a link that
/// would join conflicting numbers is not made (the pair is left for review).
pub fn evaluate(pop: &Population, t: &Thresholds) -> Quality {
    const MAX_BLOCK: usize = 400;
    let recs = &pop.records;
    let mut blocks: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        for k in keys(&r.record) {
            blocks.entry(k).or_default().push(i);
        }
    }
    let mut pairs: HashSet<(usize, usize)> = HashSet::new();
    for members in blocks.values() {
        if members.len() > MAX_BLOCK {
            continue;
        }
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                pairs.insert((a.min(b), a.max(b)));
            }
        }
    }
    let names = NameFrequencies::from_names(recs.iter().map(|r| &r.record.name));
    let mut links: Vec<(usize, usize, f32, bool)> = Vec::new();
    let mut reviews: Vec<(usize, usize)> = Vec::new();
    for &(a, b) in &pairs {
        match decide(&recs[a].record, &recs[b].record, t, &names) {
            Decision::Link { rule, score } => {
                links.push((a, b, score, rule == LinkRule::SameNationalId))
            }
            Decision::Review { .. } => reviews.push((a, b)),
            Decision::NoLink { .. } => {}
        }
    }
    links.sort_by(|x, y| {
        y.3.cmp(&x.3)
            .then(y.2.total_cmp(&x.2))
            .then((x.0, x.1).cmp(&(y.0, y.1)))
    });
    let mut sets = Sets {
        parent: (0..recs.len()).collect(),
        numbers: recs
            .iter()
            .map(|r| {
                r.record
                    .national_id
                    .iter()
                    .map(|id| {
                        let agrees = id.consistency(r.record.birth_date, r.record.sex)
                            == crate::id::Consistency::Consistent;
                        (id.system(), id.as_str().to_owned(), agrees)
                    })
                    .collect()
            })
            .collect(),
    };
    let mut blocked = 0;
    for (a, b, _, _) in &links {
        if !sets.join(*a, *b) {
            blocked += 1;
        }
    }
    // Pairwise counts from the resulting persons.
    let mut by_root: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..recs.len() {
        let r = sets.find(i);
        by_root.entry(r).or_default().push(i);
    }
    let mut q = Quality {
        people: pop.people.len(),
        records: recs.len(),
        candidate_pairs: pairs.len(),
        blocked_merges: blocked,
        ..Quality::default()
    };
    let mut truth: HashMap<usize, usize> = HashMap::new();
    for r in recs {
        *truth.entry(r.person).or_default() += 1;
    }
    q.true_pairs = truth.values().map(|n| n * (n - 1) / 2).sum();
    for members in by_root.values() {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                q.linked_pairs += 1;
                let same = recs[a].person == recs[b].person;
                if same {
                    q.correct_linked_pairs += 1;
                } else if let (Some(ia), Some(ib)) =
                    (&recs[a].record.national_id, &recs[b].record.national_id)
                    && ia == ib
                {
                    q.links_through_a_borrowed_number += 1;
                }
            }
        }
        let mut numbers: HashMap<&'static str, HashSet<&str>> = HashMap::new();
        for &m in members {
            if let Some(id) = &recs[m].record.national_id {
                numbers.entry(id.system()).or_default().insert(id.as_str());
            }
        }
        if numbers.values().any(|v| v.len() > 1) {
            q.persons_with_two_numbers += 1;
        }
    }
    q.review_pairs = reviews
        .iter()
        .filter(|(a, b)| sets.find(*a) != sets.find(*b))
        .count();
    q
}

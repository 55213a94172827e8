//! The persons each signed-in doctor opened last in the web pages (issue #19), so that the
//! viewer's PatientID-only study query is answered for the person on the doctor's screen
//! ([`huren_archive::Archive::find_for_opened`]). Kept in this process's memory, bounded and
//! expiring: it narrows an answer, it grants nothing (reach is checked on every query), so
//! losing it (a restart, another node) only makes the viewer's study list fall back to one
//! institution's records.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Persons remembered per user (tabs open side by side), users remembered in all, and for how
/// long.
const PER_USER: usize = 8;
const USERS: usize = 20_000;
const TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Default)]
pub struct OpenedPersons {
    map: Mutex<HashMap<i64, VecDeque<(String, Instant)>>>,
}

impl OpenedPersons {
    /// `user` opened `person` now.
    pub fn open(&self, user: i64, person: &str) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if map.len() >= USERS && !map.contains_key(&user) {
            map.retain(|_, v| v.back().is_some_and(|(_, t)| t.elapsed() < TTL));
            if map.len() >= USERS {
                return;
            }
        }
        let list = map.entry(user).or_default();
        list.retain(|(p, _)| p != person);
        list.push_front((person.to_owned(), Instant::now()));
        list.truncate(PER_USER);
    }

    /// The persons `user` opened, most recent first.
    pub fn of(&self, user: i64) -> Vec<String> {
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        map.get(&user)
            .map(|v| {
                v.iter()
                    .filter(|(_, t)| t.elapsed() < TTL)
                    .map(|(p, _)| p.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_recent_first_without_repeats_and_bounded() {
        let o = OpenedPersons::default();
        for p in ["a", "b", "a"] {
            o.open(1, p);
        }
        assert_eq!(o.of(1), ["a", "b"]);
        assert!(o.of(2).is_empty());
        for n in 0..20 {
            o.open(1, &n.to_string());
        }
        assert_eq!(o.of(1).len(), PER_USER);
        assert_eq!(o.of(1)[0], "19");
    }
}

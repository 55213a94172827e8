//! A person's timeline judged now, kept for the next page (issue #19: the doctor's page of a
//! person with 200 results spent two thirds of its time reading and judging them again).
//!
//! A cached judgement is used only while everything it was made from is unchanged:
//! - the person's data: their revision (migration 0036), read before the data, so an entry
//!   never claims a newer revision than the data it holds — a change committed in between
//!   makes the next page judge again;
//! - the configuration: the same catalog snapshot and recognition configuration (`Arc`s of
//!   [`crate::catalog::CatalogCache`]; a change through this process replaces them at once);
//! - the day (validity is counted in days in the region's zone);
//! - and no older than [`TTL`], the configuration caches' own bound: institutions' levels,
//!   names and qualifications read while judging are as fresh as those caches.
//!
//! Access is never cached: every page checks the reader's reach and audits the read before
//! it looks here, and the parts the reader may see (images, results) are part of the key.

use crate::catalog::Snapshot;
use crate::model::RecognitionView;
use crate::model::Timeline;
use crate::recognition_config::Config;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an entry is used at most (the configuration caches' bound).
pub(crate) const TTL: Duration = Duration::from_secs(10);

/// Entries kept at most: a page holds up to 200 studies and 200 lab results judged (a few
/// hundred kB for the largest), and [`TTL`] keeps only the persons opened in the last seconds.
const CAPACITY: usize = 256;

/// A timeline and its results judged for one receiving institution.
pub type JudgedTimeline = (Timeline, RecognitionView);

/// What a judgement is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub person: String,
    pub receiver: String,
    pub ordered_item: Option<String>,
    /// The parts the reader may see: (images, results).
    pub parts: (bool, bool),
}

/// What a judgement was made from.
#[derive(Clone)]
pub(crate) struct Stamp {
    pub revision: i64,
    pub today: time::Date,
    pub catalog: Arc<Snapshot>,
    pub config: Arc<Config>,
}

impl Stamp {
    fn same(&self, other: &Stamp) -> bool {
        self.revision == other.revision
            && self.today == other.today
            && Arc::ptr_eq(&self.catalog, &other.catalog)
            && Arc::ptr_eq(&self.config, &other.config)
    }
}

struct Entry {
    stamp: Stamp,
    made: Instant,
    judged: Arc<JudgedTimeline>,
}

#[derive(Default)]
pub(crate) struct JudgedCache(Mutex<HashMap<Key, Entry>>);

impl JudgedCache {
    /// The judgement for `key` if it was made from `stamp` within [`TTL`].
    pub(crate) fn get(&self, key: &Key, stamp: &Stamp) -> Option<Arc<JudgedTimeline>> {
        let map = self.0.lock().ok()?;
        let e = map.get(key)?;
        (e.stamp.same(stamp) && e.made.elapsed() < TTL).then(|| e.judged.clone())
    }

    pub(crate) fn put(&self, key: Key, stamp: Stamp, judged: Arc<JudgedTimeline>) {
        let Ok(mut map) = self.0.lock() else {
            return;
        };
        if map.len() >= CAPACITY && !map.contains_key(&key) {
            map.retain(|_, e| e.made.elapsed() < TTL);
            // Still full: the oldest goes.
            if map.len() >= CAPACITY
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, e)| e.made)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            key,
            Entry {
                stamp,
                made: Instant::now(),
                judged,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(person: &str) -> Arc<JudgedTimeline> {
        Arc::new((
            Timeline {
                studies: Vec::new(),
                lab_results: Vec::new(),
                reports: Vec::new(),
            },
            RecognitionView {
                person: person.into(),
                receiver: "city".into(),
                today: "2026-12-07".into(),
                catalog_version: None,
                qualification_set: None,
                scope_set: None,
                policy_set: None,
                results: Vec::new(),
            },
        ))
    }

    fn key(person: &str) -> Key {
        Key {
            person: person.into(),
            receiver: "city".into(),
            ordered_item: None,
            parts: (true, true),
        }
    }

    fn stamp(revision: i64) -> Stamp {
        Stamp {
            revision,
            today: time::macros::date!(2026 - 12 - 07),
            catalog: Arc::new(Snapshot::default()),
            config: Arc::new(Config::default()),
        }
    }

    #[test]
    fn used_only_while_made_from_the_same_things() {
        let cache = JudgedCache::default();
        let s = stamp(3);
        cache.put(key("p-1"), s.clone(), judged("p-1"));
        assert!(cache.get(&key("p-1"), &s).is_some());
        // The person's data changed.
        let newer = Stamp {
            revision: 4,
            ..s.clone()
        };
        assert!(cache.get(&key("p-1"), &newer).is_none());
        // Another day: validity is counted in days.
        let tomorrow = Stamp {
            today: time::macros::date!(2026 - 12 - 08),
            ..s.clone()
        };
        assert!(cache.get(&key("p-1"), &tomorrow).is_none());
        // The configuration was reloaded (equal content, another snapshot).
        let reloaded = Stamp {
            config: Arc::new(Config::default()),
            ..s.clone()
        };
        assert!(cache.get(&key("p-1"), &reloaded).is_none());
        // Another reader's parts, receiver or ordered item.
        let only_images = Key {
            parts: (true, false),
            ..key("p-1")
        };
        assert!(cache.get(&only_images, &s).is_none());
        let ordered = Key {
            ordered_item: Some("CT-HEAD".into()),
            ..key("p-1")
        };
        assert!(cache.get(&ordered, &s).is_none());
    }

    #[test]
    fn bounded() {
        let cache = JudgedCache::default();
        let s = stamp(1);
        for i in 0..CAPACITY + 10 {
            cache.put(key(&format!("p-{i}")), s.clone(), judged("p"));
        }
        assert_eq!(cache.len(), CAPACITY);
        // The newest are kept.
        assert!(
            cache
                .get(&key(&format!("p-{}", CAPACITY + 9)), &s)
                .is_some()
        );
    }
}

//! Watches, per server: one-shot data/exists and child watches, and `addWatch`'s
//! persistent and persistent-recursive watches (ZooKeeper's `WatchManager`).

use std::collections::{BTreeSet, HashMap};

use crate::proto::event;

#[derive(Default, Debug)]
pub struct WatchManager {
    /// getData/exists watches: fire once on created, deleted, data changed.
    data: HashMap<String, BTreeSet<i64>>,
    /// getChildren watches: fire once on children changed or deleted.
    child: HashMap<String, BTreeSet<i64>>,
    /// addWatch PERSISTENT: every event on the path, until removed.
    persistent: HashMap<String, BTreeSet<i64>>,
    /// addWatch PERSISTENT_RECURSIVE: created/deleted/data events on the path and below.
    recursive: HashMap<String, BTreeSet<i64>>,
}

/// `removeWatches` watcher types.
pub mod kind {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
}

fn add(map: &mut HashMap<String, BTreeSet<i64>>, path: &str, session: i64) {
    map.entry(path.to_string()).or_default().insert(session);
}

fn take(map: &mut HashMap<String, BTreeSet<i64>>, path: &str) -> BTreeSet<i64> {
    map.remove(path).unwrap_or_default()
}

fn remove_one(map: &mut HashMap<String, BTreeSet<i64>>, path: &str, session: i64) -> bool {
    let Some(set) = map.get_mut(path) else {
        return false;
    };
    let removed = set.remove(&session);
    if set.is_empty() {
        map.remove(path);
    }
    removed
}

impl WatchManager {
    pub fn add_data(&mut self, path: &str, session: i64) {
        add(&mut self.data, path, session);
    }

    pub fn add_child(&mut self, path: &str, session: i64) {
        add(&mut self.child, path, session);
    }

    pub fn add_persistent(&mut self, path: &str, session: i64, recursive: bool) {
        if recursive {
            add(&mut self.recursive, path, session);
        } else {
            add(&mut self.persistent, path, session);
        }
    }

    /// Sessions to notify of `event_type` on `path`; one-shot watches are consumed.
    /// Each session hears about one change once, however many of its watches match.
    pub fn trigger(&mut self, event_type: i32, path: &str) -> BTreeSet<i64> {
        let mut out = BTreeSet::new();
        match event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                out.extend(take(&mut self.data, path));
            }
            event::NODE_DELETED => {
                out.extend(take(&mut self.data, path));
                out.extend(take(&mut self.child, path));
            }
            event::NODE_CHILDREN_CHANGED => {
                out.extend(take(&mut self.child, path));
            }
            _ => {}
        }
        if let Some(s) = self.persistent.get(path) {
            out.extend(s.iter().copied());
        }
        if event_type != event::NODE_CHILDREN_CHANGED && !self.recursive.is_empty() {
            let mut p = path;
            loop {
                if let Some(s) = self.recursive.get(p) {
                    out.extend(s.iter().copied());
                }
                if p == "/" {
                    break;
                }
                p = match p.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &p[..i],
                    None => break,
                };
            }
        }
        out
    }

    /// `removeWatches`/`checkWatches`: whether `session` has a watch of `kind` on
    /// `path`, removing it unless `only_check`. Returns the removal events to deliver.
    pub fn remove(&mut self, path: &str, session: i64, kind: i32, only_check: bool) -> Vec<i32> {
        let has =
            |m: &HashMap<String, BTreeSet<i64>>| m.get(path).is_some_and(|s| s.contains(&session));
        let mut events = Vec::new();
        if (kind == kind::CHILDREN || kind == kind::ANY) && has(&self.child) {
            events.push(event::CHILD_WATCH_REMOVED);
        }
        if (kind == kind::DATA || kind == kind::ANY) && has(&self.data) {
            events.push(event::DATA_WATCH_REMOVED);
        }
        if kind == kind::ANY && (has(&self.persistent) || has(&self.recursive)) {
            events.push(event::PERSISTENT_WATCH_REMOVED);
        }
        if !only_check {
            if kind == kind::CHILDREN || kind == kind::ANY {
                remove_one(&mut self.child, path, session);
            }
            if kind == kind::DATA || kind == kind::ANY {
                remove_one(&mut self.data, path, session);
            }
            if kind == kind::ANY {
                remove_one(&mut self.persistent, path, session);
                remove_one(&mut self.recursive, path, session);
            }
        }
        events
    }

    /// Forget every watch of a closed or expired session.
    pub fn remove_session(&mut self, session: i64) {
        for map in [
            &mut self.data,
            &mut self.child,
            &mut self.persistent,
            &mut self.recursive,
        ] {
            map.retain(|_, s| {
                s.remove(&session);
                !s.is_empty()
            });
        }
    }

    /// Total watches, for `mntr`'s `zk_watch_count`.
    pub fn count(&self) -> usize {
        [&self.data, &self.child, &self.persistent, &self.recursive]
            .iter()
            .map(|m| m.values().map(BTreeSet::len).sum::<usize>())
            .sum()
    }

    /// Paths watched by each session, for the `wchs` four-letter word.
    pub fn by_session(&self) -> HashMap<i64, BTreeSet<String>> {
        let mut out: HashMap<i64, BTreeSet<String>> = HashMap::new();
        for map in [&self.data, &self.child, &self.persistent, &self.recursive] {
            for (p, sessions) in map {
                for s in sessions {
                    out.entry(*s).or_default().insert(p.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_watches_fire_once() {
        let mut w = WatchManager::default();
        w.add_data("/a", 1);
        w.add_child("/a", 2);
        assert_eq!(
            w.trigger(event::NODE_DATA_CHANGED, "/a"),
            BTreeSet::from([1])
        );
        assert!(w.trigger(event::NODE_DATA_CHANGED, "/a").is_empty());
        assert_eq!(w.trigger(event::NODE_DELETED, "/a"), BTreeSet::from([2]));
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn recursive_watches_see_descendants_but_not_child_events() {
        let mut w = WatchManager::default();
        w.add_persistent("/a", 1, true);
        w.add_persistent("/a", 2, false);
        assert_eq!(
            w.trigger(event::NODE_CREATED, "/a/b/c"),
            BTreeSet::from([1])
        );
        assert_eq!(
            w.trigger(event::NODE_CHILDREN_CHANGED, "/a"),
            BTreeSet::from([2])
        );
        assert_eq!(
            w.trigger(event::NODE_DATA_CHANGED, "/a"),
            BTreeSet::from([1, 2])
        );
        assert_eq!(w.count(), 2, "persistent watches stay");
        assert!(w.trigger(event::NODE_CREATED, "/ab").is_empty());
    }

    #[test]
    fn remove_watches_reports_what_it_removed() {
        let mut w = WatchManager::default();
        w.add_data("/a", 1);
        assert!(w.remove("/a", 1, kind::CHILDREN, false).is_empty());
        assert_eq!(
            w.remove("/a", 1, kind::ANY, true),
            vec![event::DATA_WATCH_REMOVED]
        );
        assert_eq!(
            w.remove("/a", 1, kind::DATA, false),
            vec![event::DATA_WATCH_REMOVED]
        );
        assert_eq!(w.count(), 0);
    }
}

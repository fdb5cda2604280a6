//! Caching: answer from memory, never past the entry's time to live.
//!
//! An LRU bounded by entry count (the `lru` crate: O(1) get and insert), where every entry
//! carries its expiry. An entry is served only while `now < inserted + ttl`; an expired entry
//! found on lookup is dropped. Time is a parameter, so a simulated run caches exactly as a real
//! one would.
//!
//! What may be cached is decided by [`is_cacheable`]: tool lists, and results of tools that a
//! trusted server marks read-only (an idempotent tool may still change the world the first
//! time; only a read-only one returns what a second call would). Keys for tool results are the
//! tool's name and its arguments as canonical JSON ([`CacheKey::call`]), so argument key order
//! does not split the cache.
//!
//! Defaults: 1,024 entries, 30 s for tool lists (servers announce changes with `list_changed`,
//! which should invalidate sooner), 5 s for results (short: read-only is not immutable).

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::time::Duration;

use lru::LruCache;
use serde_json::Value;

use crate::aggregate::canonical;
use crate::fleet::ServerId;
use crate::retry::CallKind;
use crate::time::Time;

/// The default capacity in entries.
pub const DEFAULT_CAPACITY: usize = 1_024;

/// Whether a call's answer may be cached.
pub fn is_cacheable(kind: CallKind) -> bool {
    match kind {
        CallKind::List => true,
        CallKind::Discover => false,
        CallKind::Tool { hints, trusted } => trusted && hints.read_only,
    }
}

/// What an entry answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheKey {
    /// One server's tool list.
    ToolList(ServerId),
    /// A tool call: exposed tool name and canonical arguments.
    Call {
        /// The exposed tool name.
        tool: String,
        /// The arguments as canonical JSON.
        arguments: String,
    },
}

impl CacheKey {
    /// The key of a call to `tool` with `arguments`.
    pub fn call(tool: &str, arguments: &Value) -> CacheKey {
        CacheKey::Call { tool: tool.to_owned(), arguments: canonical(arguments) }
    }
}

/// A TTL + LRU cache.
#[derive(Debug)]
pub struct TtlCache<K: Hash + Eq, V> {
    entries: LruCache<K, (V, Time)>,
}

impl<K: Hash + Eq, V> TtlCache<K, V> {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: NonZeroUsize) -> TtlCache<K, V> {
        TtlCache { entries: LruCache::new(capacity) }
    }

    /// The value for `key` if it has not expired at `now`.
    pub fn get(&mut self, key: &K, now: Time) -> Option<&V> {
        let expired = self.entries.peek(key).is_some_and(|(_, expires)| now >= *expires);
        if expired {
            self.entries.pop(key);
            return None;
        }
        self.entries.get(key).map(|(v, _)| v)
    }

    /// Stores `value` for `ttl` from `now`, evicting the least recently used entry if full.
    pub fn insert(&mut self, key: K, value: V, ttl: Duration, now: Time) {
        self.entries.put(key, (value, now + ttl));
    }

    /// Forgets `key` (e.g. on `list_changed`).
    pub fn invalidate(&mut self, key: &K) {
        self.entries.pop(key);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Entries held, expired ones included until they are looked up.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::ToolHints;
    use serde_json::json;

    #[test]
    fn an_entry_is_served_until_its_ttl_and_not_a_nanosecond_after() {
        let mut c = TtlCache::new(NonZeroUsize::new(4).unwrap());
        c.insert("k", 1, Duration::from_secs(5), Time::from_secs(10));
        assert_eq!(c.get(&"k", Time::from_secs(15) - Duration::from_nanos(1)), Some(&1));
        assert_eq!(c.get(&"k", Time::from_secs(15)), None);
        assert!(c.is_empty());
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted_first() {
        let mut c = TtlCache::new(NonZeroUsize::new(2).unwrap());
        let ttl = Duration::from_secs(60);
        c.insert("a", 1, ttl, Time::ZERO);
        c.insert("b", 2, ttl, Time::ZERO);
        c.get(&"a", Time::ZERO);
        c.insert("c", 3, ttl, Time::ZERO);
        assert_eq!(c.get(&"b", Time::ZERO), None);
        assert_eq!(c.get(&"a", Time::ZERO), Some(&1));
    }

    #[test]
    fn call_keys_ignore_argument_key_order() {
        let a = CacheKey::call("search", &json!({"q": "x", "limit": 10}));
        let b = CacheKey::call("search", &serde_json::from_str(r#"{"limit":10.0,"q":"x"}"#).unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn only_trusted_read_only_results_are_cacheable() {
        let ro = ToolHints { read_only: true, idempotent: false };
        assert!(is_cacheable(CallKind::Tool { hints: ro, trusted: true }));
        assert!(!is_cacheable(CallKind::Tool { hints: ro, trusted: false }));
        let idem = ToolHints { read_only: false, idempotent: true };
        assert!(!is_cacheable(CallKind::Tool { hints: idem, trusted: true }));
    }
}

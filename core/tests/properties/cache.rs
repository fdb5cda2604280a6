use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use gauntlet_core::Time;
use gauntlet_core::cache::TtlCache;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_cache_never_serves_an_expired_entry(
        capacity in 1usize..6,
        ops in prop::collection::vec((0u64..50, 0u8..8, prop::bool::ANY, 1u64..100), 1..300),
    ) {
        let mut cache = TtlCache::new(NonZeroUsize::new(capacity).unwrap());
        // key → (value, expiry) of the latest insert
        let mut model: BTreeMap<u8, (u64, Time)> = BTreeMap::new();
        let mut now = Time::ZERO;
        for (i, (dt, key, insert, ttl_ms)) in ops.into_iter().enumerate() {
            now = now + Duration::from_millis(dt);
            if insert {
                cache.insert(key, i as u64, Duration::from_millis(ttl_ms), now);
                model.insert(key, (i as u64, now + Duration::from_millis(ttl_ms)));
            } else if let Some(&served) = cache.get(&key, now) {
                let (value, expiry) = model[&key];
                prop_assert!(now < expiry, "served key {key} at {now}, expired at {expiry}");
                prop_assert_eq!(served, value, "served a stale value");
            }
            prop_assert!(cache.len() <= capacity);
        }
    }
}

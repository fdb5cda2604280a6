use std::time::Duration;

use gauntlet_core::outcome::Verdict;
use gauntlet_core::outlier::{Ejection, OutlierConfig, OutlierDetector};
use gauntlet_core::{ServerId, Time};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn outlier_ejection_never_exceeds_its_fraction(
        n in 1usize..12, fraction in 0.0f64..=1.0, consecutive in 1u32..4,
        ops in prop::collection::vec((0u64..2_000, 0usize..12, prop::bool::weighted(0.6)), 1..500),
    ) {
        let config = OutlierConfig {
            consecutive_failures: Some(consecutive),
            max_ejected_fraction: fraction,
            request_volume: 5,
            min_hosts: 2,
            interval: Duration::from_secs(1),
            ..Default::default()
        };
        let mut d = OutlierDetector::new(config, n, Time::ZERO);
        let cap = (fraction * n as f64).floor() as u32;
        let mut ejected = vec![false; n];
        let mut now = Time::ZERO;
        let mut changes = Vec::new();
        for (dt, server, fails) in ops {
            now = now + Duration::from_millis(dt);
            let id = ServerId((server % n) as u32);
            let verdict = if fails { Verdict::Failure } else { Verdict::Success };
            changes.extend(d.record(id, verdict, now));
            d.review(now, &mut changes);
            for c in changes.drain(..) {
                match c {
                    Ejection::Eject { server, .. } => {
                        prop_assert!(!ejected[server.index()], "ejected twice");
                        ejected[server.index()] = true;
                    }
                    Ejection::Restore { server } => ejected[server.index()] = false,
                }
            }
            let count = ejected.iter().filter(|&&e| e).count() as u32;
            prop_assert!(count <= cap, "{count} of {n} ejected, cap {cap}");
            prop_assert_eq!(count, d.ejected());
        }
    }
}

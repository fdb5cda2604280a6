use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_core::retry::{BUDGET_BUCKETS, Backoff, BudgetConfig, Jitter, RetryBudget};
use gauntlet_core::{SeededRng, Time};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The bound proved in `retry::budget`'s docs: over any window of the budget's length
    /// (aligned to buckets), withdrawals ≤ ratio × deposits of that window and the one before
    /// it + min_per_sec × window.
    #[test]
    fn retries_plus_hedges_never_exceed_the_budget_over_any_window(
        ratio in 0.0f64..2.0, min_per_sec in 0u32..5, window_ms in 10u64..5_000,
        ops in prop::collection::vec((0u64..300, prop::bool::weighted(0.4)), 1..600),
    ) {
        let config = BudgetConfig { ratio, min_per_sec, window: Duration::from_millis(window_ms) };
        let mut budget = RetryBudget::new(config);
        let width = (window_ms * 1_000_000 / BUDGET_BUCKETS as u64).max(1);
        let floor = f64::from(min_per_sec) * config.window.as_secs_f64();
        let mut now = Time::ZERO;
        // bucket index → (deposits, granted withdrawals)
        let mut log: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for (dt, is_withdrawal) in ops {
            now = now + Duration::from_millis(dt);
            let e = log.entry(now.as_nanos() / width).or_default();
            if is_withdrawal {
                e.1 += u64::from(budget.withdraw(now));
            } else {
                budget.deposit(now);
                e.0 += 1;
            }
        }
        let b = BUDGET_BUCKETS as u64;
        let last = now.as_nanos() / width;
        for end in 0..=last + b {
            let sum = |from: u64, to: u64, f: fn(&(u64, u64)) -> u64| log.range(from..=to).map(|(_, v)| f(v)).sum::<u64>();
            let withdrawn = sum(end.saturating_sub(b - 1), end, |v| v.1);
            let deposited = sum(end.saturating_sub(2 * b - 1), end, |v| v.0);
            prop_assert!(
                withdrawn as f64 <= ratio * deposited as f64 + floor + 1e-9,
                "window ending at bucket {end}: {withdrawn} withdrawn, {deposited} deposited"
            );
        }
    }

    #[test]
    fn backoff_stays_within_its_bounds(base_ms in 0u64..500, cap_ms in 0u64..5_000, retries in 0u32..80, seed: u64) {
        let mut rng = SeededRng::new(seed);
        for jitter in [Jitter::None, Jitter::Full, Jitter::Decorrelated] {
            let b = Backoff { base: Duration::from_millis(base_ms), cap: Duration::from_millis(cap_ms), jitter };
            let mut previous = Duration::ZERO;
            for retry in 0..retries {
                let d = b.delay(retry, previous, &mut rng);
                prop_assert!(d <= b.cap, "{jitter:?}: {d:?} above the cap");
                let exp = b.base.saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX)).min(b.cap);
                match jitter {
                    Jitter::None => prop_assert_eq!(d, exp),
                    Jitter::Full => prop_assert!(d <= exp),
                    Jitter::Decorrelated => {
                        prop_assert!(d >= b.base.min(b.cap));
                        prop_assert!(d <= (previous * 3).max(b.base).min(b.cap));
                    }
                }
                previous = d;
            }
        }
    }
}

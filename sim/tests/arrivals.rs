//! Offered load is delivered: an open-loop workload issues every scheduled arrival, however
//! many fall in one tick, from 10 calls per second to the most a scenario may ask for.

use std::time::Duration;

use gauntlet_sim::{Arrivals, Scenario, ServerGroup, ServiceTime, SimTool, Workload, run};

fn open_loop(rate: f64, duration: Duration) -> Scenario {
    let group = ServerGroup::new("g", 3, vec![SimTool::safe("t")], ServiceTime::Constant(Duration::from_millis(1)));
    let workload = Workload {
        arrivals: Arrivals::Poisson(rate),
        mix: vec![("g__t".to_owned(), 1)],
        deadline: Duration::from_secs(2),
        aggregate: None,
        think: Duration::ZERO,
        affinity: None,
    };
    Scenario::new("arrivals", 3, duration, vec![group], workload)
}

#[test]
fn an_open_loop_workload_issues_every_offered_call_from_10_to_100000_per_second() {
    for (rate, secs) in [(10.0, 20), (200.0, 5), (1_000.0, 2), (10_000.0, 1), (100_000.0, 1)] {
        let r = run(&open_loop(rate, Duration::from_secs(secs))).expect("runs");
        let expected = rate * secs as f64;
        // The schedule is a Poisson process: its count is within 5 standard deviations of the mean.
        let slack = 5.0 * expected.sqrt();
        assert!(
            (r.offered as f64 - expected).abs() <= slack,
            "{rate}/s for {secs} s offered {} calls, expected {expected} ± {slack}",
            r.offered
        );
        assert_eq!(r.issued, r.offered, "{rate}/s: every offered call is issued");
        assert!(r.violations.is_empty(), "{rate}/s: {:?}", r.violations);
    }
}

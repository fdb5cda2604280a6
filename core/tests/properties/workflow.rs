//! The workflow planner: order, bounds, cycles, and resuming from any prefix of a journal.

use gauntlet_core::workflow::{
    Builder, DefinitionError, FallbackSpec, Progress, Record, Start, Status, StepSpec, StepState, Workflow,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// A random DAG: step `i` may depend on any earlier step (in a shuffled naming, so the written
/// order is not a topological one), reading some through templates and others through `after`.
fn dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<usize>)> {
    (1usize..40).prop_flat_map(|n| {
        let deps = (0..n).map(|i| proptest::collection::btree_set(0..i.max(1), 0..=i.min(3))).collect::<Vec<_>>();
        let deps = deps.prop_map(|d| {
            d.into_iter()
                .enumerate()
                .map(|(i, s)| s.into_iter().filter(|&x| x < i).collect())
                .collect::<Vec<Vec<usize>>>()
        });
        (deps, Just((0..n).collect::<Vec<_>>()).prop_shuffle())
    })
}

fn build(
    deps: &[Vec<usize>],
    written: &[usize],
    parallel: u32,
    extra: Option<(usize, usize)>,
) -> Result<Workflow, DefinitionError> {
    let name = |i: usize| format!("s{i}");
    let mut b = Builder::new("w").max_parallel(parallel);
    for &i in written {
        let mut d: Vec<usize> = deps[i].iter().copied().filter(|&d| d < i).collect();
        if let Some((from, to)) = extra
            && from == i
        {
            d.push(to);
        }
        let (read, after) = d.split_at(d.len() / 2);
        let args: serde_json::Map<String, Value> =
            read.iter().map(|&d| (name(d), json!(format!("${{steps.{}.text}}", name(d))))).collect();
        let after: Vec<String> = after.iter().map(|&d| name(d)).collect();
        b = b.step(StepSpec::call(&name(i), "t", Value::Object(args)).after(after.iter().map(String::as_str)));
    }
    b.build()
}

fn answer(step: usize) -> Value {
    json!({ "text": format!("r{step}") })
}

proptest! {
    #[test]
    fn any_acyclic_definition_runs_every_step_once_after_its_dependencies_within_the_bound(
        (deps, written) in dag(),
        parallel in 1u32..6,
        picks in proptest::collection::vec(any::<u32>(), 64),
    ) {
        let w = build(&deps, &written, parallel, None).expect("acyclic");
        let mut p = Progress::new(&w, json!({}));
        let mut started = vec![0u32; w.steps().len()];
        let mut done = vec![false; w.steps().len()];
        let mut running: Vec<usize> = Vec::new();
        let mut k = 0;
        loop {
            while let Some(start) = p.next_step() {
                let Start::Call { step, .. } = start else { panic!("no condition, no missing value: {start:?}") };
                started[step] += 1;
                for &d in w.deps(step) {
                    prop_assert!(done[d as usize], "step {step} started before its dependency {d}");
                }
                running.push(step);
                prop_assert!(running.len() <= parallel as usize, "{} running, bound {parallel}", running.len());
            }
            if running.is_empty() {
                break;
            }
            // Any running step may finish next.
            let at = picks[k % picks.len()] as usize % running.len();
            k += 1;
            let step = running.swap_remove(at);
            done[step] = true;
            p.complete(step, answer(step), false);
        }
        prop_assert!(started.iter().all(|&n| n == 1), "every step once: {started:?}");
        prop_assert_eq!(p.status(), Some(Status::Completed));
    }

    #[test]
    fn any_cyclic_definition_is_rejected_naming_a_real_cycle(
        (deps, written) in dag(),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let n = deps.len();
        prop_assume!(n >= 2);
        // Make a path from `lo` to `hi` (hi depends on lo through a chain), then close it.
        let (mut lo, mut hi) = (a.index(n), b.index(n));
        if lo == hi {
            hi = (hi + 1) % n;
        }
        if lo > hi {
            std::mem::swap(&mut lo, &mut hi);
        }
        let mut deps = deps;
        deps[hi].push(lo);
        let e = build(&deps, &written, 4, Some((lo, hi))).expect_err("cyclic");
        let DefinitionError::Cycle { cycle, .. } = e else { panic!("{e:?}") };
        prop_assert!(!cycle.is_empty());
        // Each named step depends on the next, the last on the first.
        let index = |s: &str| s[1..].parse::<usize>().expect("name");
        for (k, s) in cycle.iter().enumerate() {
            let next = index(&cycle[(k + 1) % cycle.len()]);
            let me = index(s);
            let depends = deps[me].contains(&next) || (me == lo && next == hi);
            prop_assert!(depends, "{s} does not depend on {}: {cycle:?}", cycle[(k + 1) % cycle.len()]);
        }
    }

    #[test]
    fn resuming_from_any_prefix_of_a_journal_ends_as_the_uninterrupted_run(
        (deps, written) in dag(),
        fail in proptest::option::of(any::<prop::sample::Index>()),
        replayable in any::<bool>(),
    ) {
        // Every step has a compensation; one step may fail (no fallback).
        let name = |i: usize| format!("s{i}");
        let failing = fail.map(|f| f.index(deps.len()));
        let mut b = Builder::new("w").max_parallel(3);
        for &i in &written {
            let after: Vec<String> = deps[i].iter().map(|&d| name(d)).collect();
            b = b.step(
                StepSpec::call(&name(i), "t", json!({}))
                    .after(after.iter().map(String::as_str))
                    .compensate("undo", json!({ "of": format!("${{steps.{}.text}}", name(i)) })),
            );
        }
        let w = b.build().expect("acyclic");
        let journal = drive(&w, failing, &mut Vec::new(), None);
        let uninterrupted = outcome(&w, &journal);
        for cut in 1..=journal.len() {
            let (mut p, ended) = Progress::resume(&w, &journal[..cut], |_| replayable).expect("resumes");
            let mut records = journal[..cut].to_vec();
            if ended.is_none() {
                continue_run(&mut p, failing, &mut records);
            }
            let resumed = outcome(&w, &records);
            // An unsafe step cut between its intent and its outcome is reported unknown; else
            // the resumed run ends as the uninterrupted one.
            let cut_in_flight = matches!(journal[cut - 1], Record::Intent { .. }) && !replayable;
            if cut_in_flight {
                prop_assert_eq!(resumed.0, Status::Unknown);
            } else {
                prop_assert_eq!(&resumed, &uninterrupted, "cut after record {}", cut);
            }
        }
    }
}

/// The status, output and compensated steps a journal ends with.
fn outcome(w: &Workflow, records: &[Record]) -> (Status, Option<Value>, Vec<u32>) {
    let Some(Record::Ended { status, output }) = records.last() else { panic!("the run ended") };
    let mut undone: Vec<u32> =
        records.iter().filter_map(|r| if let Record::Undone { step } = r { Some(*step) } else { None }).collect();
    undone.sort_unstable();
    // Nothing is done or undone twice.
    let mut done: Vec<u32> =
        records.iter().filter_map(|r| if let Record::Done { step, .. } = r { Some(*step) } else { None }).collect();
    let n = done.len();
    done.sort_unstable();
    done.dedup();
    assert_eq!(done.len(), n, "a step done twice in {} steps", w.steps().len());
    (*status, output.clone(), undone)
}

/// A fresh run, one step at a time, the journal written as the executor writes it.
fn drive(w: &Workflow, failing: Option<usize>, records: &mut Vec<Record>, _: Option<()>) -> Vec<Record> {
    records.push(Record::Started { workflow: w.name().to_owned(), digest: w.digest(), inputs: json!({}) });
    let mut p = Progress::new(w, json!({}));
    continue_run(&mut p, failing, records);
    records.clone()
}

fn continue_run(p: &mut Progress<'_>, failing: Option<usize>, records: &mut Vec<Record>) {
    if p.unknown().next().is_none() {
        while let Some(start) = p.next_step() {
            match start {
                Start::Call { step, .. } => {
                    records.push(Record::Intent { step: step as u32 });
                    if Some(step) == failing {
                        let failure = gauntlet_core::workflow::StepFailure::MayHaveRun;
                        p.fail(step, &failure);
                        records.push(Record::Failed { step: step as u32, failure });
                    } else {
                        p.complete(step, answer(step), false);
                        records.push(Record::Done { step: step as u32, result: answer(step), fallback: false });
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        for i in p.compensations() {
            records.push(Record::UndoIntent { step: i as u32 });
            p.undone(i);
            records.push(Record::Undone { step: i as u32 });
        }
    }
    let status = p.status().expect("settled");
    let output = (status == Status::Completed).then(|| p.output().expect("output"));
    records.push(Record::Ended { status, output });
}

#[test]
fn a_fallback_value_stands_in_for_a_failed_call_and_its_dependents_read_it() {
    let w = Builder::new("w")
        .step(StepSpec::call("a", "t", json!({})).fallback(FallbackSpec::Value(json!({"text": "cached"}))))
        .step(StepSpec::call("b", "t", json!({"x": "${steps.a.text}"})))
        .build()
        .expect("valid");
    let (status, output) = gauntlet_core::workflow::reference(&w, json!({}), |step, _, args| {
        (step == 1).then(|| json!({"text": args["x"].clone()}))
    });
    assert_eq!(status, Status::Completed);
    assert_eq!(output, Some(json!({"a": {"text": "cached"}, "b": {"text": "cached"}})));
}

#[test]
fn a_skipped_step_reads_as_null_and_lets_its_dependents_run() {
    use gauntlet_core::workflow::WhenSpec;
    let w = Builder::new("w")
        .step(StepSpec::call("a", "t", json!({})).when(WhenSpec::Equals("input.go".into(), json!(true))))
        .step(StepSpec::call("b", "t", json!({"a": "${steps.a}"})))
        .build()
        .expect("valid");
    let mut p = Progress::new(&w, json!({"go": false}));
    assert_eq!(p.next_step(), Some(Start::Skipped { step: 0 }));
    assert_eq!(p.state(0), StepState::Skipped);
    assert_eq!(p.next_step(), Some(Start::Call { step: 1, args: json!({"a": null}) }));
}

#[test]
fn a_changed_definition_is_not_resumed() {
    let w = Builder::new("w").step(StepSpec::call("a", "t", json!({}))).build().expect("valid");
    let records = [Record::Started { workflow: "w".into(), digest: w.digest() ^ 1, inputs: json!({}) }];
    assert!(matches!(
        Progress::resume(&w, &records, |_| true),
        Err(gauntlet_core::workflow::ResumeError::Changed { .. })
    ));
}

//! Workflows: planning a 1,000-step DAG (`workflow/plan`), the planner's work per step while a
//! run goes through it (`workflow/drive`), journal appends on redb (a file, synced and not; the
//! simulator's in-memory disk), and two simulated measures that criterion does not time: the
//! parallel efficiency of a wide DAG (critical path over makespan, in simulated time) and 64
//! concurrent runs of ten steps (runs per wall-clock second, with and without the journal's cost
//! shown by the simulated disk's share).

mod common;

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gauntlet_client::flow::{Journal, RedbJournal};
use gauntlet_core::workflow::{Builder, Progress, Record, Start, StepSpec, Workflow};
use serde_json::json;

/// Steps of the planning bench's DAG.
const STEPS: usize = 1_000;
/// Steps per layer: each step reads two steps of the layer before.
const WIDTH: usize = 20;
const SEED: u64 = 0x5eed;

/// A layered DAG of `STEPS` steps; every step after the first layer reads two of the previous
/// layer's results in its arguments.
fn spec() -> gauntlet_core::workflow::Spec {
    let mut b = Builder::new("wide").max_parallel(64);
    let mut x = SEED;
    for i in 0..STEPS {
        let args = if i < WIDTH {
            json!({ "i": i })
        } else {
            let layer = i / WIDTH - 1;
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let a = layer * WIDTH + (x >> 33) as usize % WIDTH;
            let c = layer * WIDTH + (x >> 17) as usize % WIDTH;
            json!({ "a": format!("${{steps.s{a}.text}}"), "b": format!("${{steps.s{c}.structuredContent}}") })
        };
        b = b.step(StepSpec::call(&format!("s{i}"), "g__t", args));
    }
    // The definition as written, to time `Workflow::new` alone.
    b.into_spec()
}

/// Drives `w` to the end, every call answered at once with a small result.
fn drive(w: &Workflow) -> usize {
    let mut p = Progress::new(w, json!({}));
    let mut running = Vec::with_capacity(64);
    let mut steps = 0;
    loop {
        while let Some(start) = p.next_step() {
            if let Start::Call { step, .. } = start {
                running.push(step);
            }
        }
        let Some(step) = running.pop() else { break };
        steps += 1;
        p.complete(step, json!({ "text": "r", "structuredContent": { "v": 1 } }), false);
    }
    steps
}

fn planning(c: &mut Criterion) {
    let spec = spec();
    let w = Workflow::new(spec.clone()).expect("valid");
    let mut group = c.benchmark_group("workflow");
    group.bench_function(format!("plan/{STEPS}"), |b| {
        b.iter_batched(|| spec.clone(), |s| black_box(Workflow::new(s).expect("valid")), BatchSize::SmallInput);
    });
    group.bench_function(format!("drive/{STEPS}"), |b| b.iter(|| black_box(drive(&w))));
    group.finish();
}

fn journal(c: &mut Criterion) {
    let record =
        Record::Done { step: 3, result: json!({ "text": "a result of some forty bytes, typical" }), fallback: false };
    let mut group = c.benchmark_group("journal");
    group.sample_size(20);
    let path = std::env::temp_dir().join(format!("gauntlet-bench-journal-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    {
        let mut j = RedbJournal::open(&path).expect("opens");
        let mut run = 0u64;
        group.bench_function("append/file-synced", |b| {
            b.iter(|| {
                run += 1;
                j.append(run, &record, true).expect("appends");
            });
        });
        group.bench_function("append/file-unsynced", |b| {
            b.iter(|| {
                run += 1;
                j.append(run, &record, false).expect("appends");
            });
        });
    }
    let _ = std::fs::remove_file(&path);
    let disk = gauntlet_sim::disk::SimDisk::new();
    let mut j = RedbJournal::on(disk.handle()).expect("opens");
    let mut run = 0u64;
    group.bench_function("append/simulated-disk-synced", |b| {
        b.iter(|| {
            run += 1;
            j.append(run, &record, true).expect("appends");
        });
    });
    group.finish();
}

/// A scenario running `steps` (TOML `[[workflow.step]]` tables) with `callers` runs at once on
/// a fleet answering in a constant 20 ms.
fn flow_scenario(callers: u32, steps: &str, seconds: u64) -> gauntlet_sim::Scenario {
    let text = format!(
        r#"
name = "bench"
description = "bench"
seed = {SEED}
duration = "{seconds}s"
[[fleet]]
group = "g"
count = 4
idempotent_tools = ["t"]
latency = {{ constant = "20ms" }}
[workflow]
max_parallel = 64
{steps}
[workload]
arrivals = {{ callers = {callers} }}
deadline = "5s"
"#
    );
    gauntlet_sim::file::parse("bench.toml", &text).unwrap_or_else(|e| panic!("{e}")).scenario
}

fn step_table(name: &str, reads: &[String]) -> String {
    let args: Vec<String> = reads.iter().map(|r| format!("{r} = \"${{steps.{r}.text}}\"")).collect();
    format!(
        "[[workflow.step]]\nname = \"{name}\"\ntool = \"g__t\"\nargs = {{ run = \"${{input.run}}\", {} }}\n",
        args.join(", ")
    )
    .replace(", }", " }")
}

fn simulated(_: &mut Criterion) {
    // Parallel efficiency: a root, 16 branches at once, a join. The critical path is three
    // steps; one step alone is measured in the same fleet.
    let one = flow_scenario(1, &step_table("root", &[]), 5);
    let mut wide = step_table("root", &[]);
    let branches: Vec<String> = (0..16).map(|i| format!("b{i}")).collect();
    for b in &branches {
        wide.push_str(&step_table(b, &["root".to_owned()]));
    }
    wide.push_str(&step_table("join", &branches));
    let wide = flow_scenario(1, &wide, 5);
    let single = gauntlet_sim::summarize(&gauntlet_sim::run(&one).expect("runs"));
    let makespan = gauntlet_sim::summarize(&gauntlet_sim::run(&wide).expect("runs"));
    let step_ms = single.latency.p50.unwrap_or(f64::NAN);
    let makespan_ms = makespan.latency.p50.unwrap_or(f64::NAN);
    common::report(&format!(
        "workflow/efficiency: one step {step_ms:.1} ms (median), root + 16 branches + join {makespan_ms:.1} ms: critical path / makespan = {:.3}",
        3.0 * step_ms / makespan_ms
    ));

    // 64 runs at once of ten steps: four lookups, a chain of five writes, a notification.
    let mut ten = String::new();
    for l in ["a", "b", "c", "d"] {
        ten.push_str(&step_table(l, &[]));
    }
    ten.push_str(&step_table("w1", &["a".to_owned(), "b".to_owned()]));
    ten.push_str(&step_table("w2", &["c".to_owned(), "d".to_owned(), "w1".to_owned()]));
    for i in 3..=5 {
        ten.push_str(&step_table(&format!("w{i}"), &[format!("w{}", i - 1)]));
    }
    ten.push_str(&step_table("done", &["w5".to_owned()]));
    let s = flow_scenario(64, &ten, 4);
    let mut rates = Vec::new();
    let mut runs = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let report = gauntlet_sim::run(&s).expect("runs");
        runs = report.issued;
        rates.push(report.issued as f64 / t.elapsed().as_secs_f64());
    }
    let rate = common::Spread::of(rates).median;
    common::report(&format!(
        "workflow/concurrent: 64 runs of 10 steps at once, {runs} runs in 4 simulated seconds: {rate:.0} runs/s, {:.0} steps/s of wall time (median of 3)",
        rate * 10.0
    ));
}

criterion_group!(benches, planning, journal, simulated);
criterion_main!(benches);

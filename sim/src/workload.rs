//! The workload: open-loop (Poisson) or closed-loop callers issuing the tool mix against the
//! real client, each call recorded from its start to its end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_client::{CallError, CallOptions, MultiServerClient};
use gauntlet_core::SeededRng;
use serde_json::{Value, json};

use crate::log::{CallEnd, Failure, micros};
use crate::record::Recorder;
use crate::scenario::{Affinity, Arrivals, Workload};

/// The most calls one run issues: a limit on everything, and a guard against a workload
/// that spins.
pub const MAX_CALLS: u64 = 2_000_000;

/// Attempts a failed call sent.
fn failed_attempts(e: &CallError) -> u32 {
    match e {
        CallError::Failed { attempts, .. } => *attempts,
        CallError::NoServer { tried, .. } => u32::try_from(tried.len()).unwrap_or(u32::MAX),
        CallError::UnknownTool(_) | CallError::Aggregate(_) => 0,
    }
}

/// Issues the workload's calls until `duration`, then waits for every call to end; returns the
/// calls it offered.
pub(crate) async fn drive(
    client: Arc<MultiServerClient>,
    workload: Workload,
    duration: Duration,
    rng: SeededRng,
    recorder: Arc<Mutex<Recorder>>,
) -> u64 {
    let start = tokio::time::Instant::now();
    let rng = Arc::new(Mutex::new(rng));
    let next_id = Arc::new(Mutex::new(0u64));
    // The file's checks bound the mix (1,000 entries of weight at most 10^6): the sum fits.
    let total: u32 = workload.mix.iter().fold(0u32, |sum, (_, w)| sum.saturating_add(*w)).max(1);
    let call = {
        let (client, recorder, workload) = (client.clone(), recorder.clone(), workload.clone());
        move |(tool_index, key): (usize, Option<u32>), id: u64| {
            let (client, recorder, deadline, aggregate) =
                (client.clone(), recorder.clone(), workload.deadline, workload.aggregate);
            async move {
                let started = tokio::time::Instant::now();
                let tool = {
                    let mut recorder = recorder.lock().expect("recorder");
                    recorder.start(id, tool_index, micros(started - start), key);
                    recorder.tool(tool_index).to_owned()
                };
                let mut args = serde_json::Map::from_iter([("call".to_owned(), json!(id))]);
                let (attempts, end) = match aggregate {
                    None => {
                        let options = CallOptions {
                            deadline: Some(deadline),
                            affinity: key.map(u64::from),
                            ..CallOptions::default()
                        };
                        match client.call_tool_with(&tool, args, options).await {
                            Ok(r) => {
                                // The first text block, read in place (no copy of the result).
                                let text = r.result.content.first().and_then(|c| c.as_text()).map(|t| t.text.as_str());
                                (
                                    r.attempts,
                                    CallEnd::Ok {
                                        server: r.server,
                                        tool_error: r.result.is_error == Some(true),
                                        answer: None,
                                        correct: text.is_some_and(|t| honest(t, id)),
                                    },
                                )
                            }
                            Err(e) => (failed_attempts(&e), CallEnd::Failed(Failure::from(&e))),
                        }
                    }
                    Some(aggregation) => {
                        // Servers record their answers to calls marked `fanout` for the checker.
                        args.insert("fanout".to_owned(), json!(true));
                        match client.call_all(&tool, args, aggregation).await {
                            Ok((value, agreeing)) => {
                                let answer = value.pointer("/content/0/text").and_then(Value::as_str);
                                let server = agreeing.into_iter().next().unwrap_or_default();
                                let correct = answer.is_some_and(|t| honest(t, id));
                                (
                                    1,
                                    CallEnd::Ok {
                                        server,
                                        tool_error: false,
                                        answer: answer.map(str::to_owned),
                                        correct,
                                    },
                                )
                            }
                            Err(e) => (1, CallEnd::Failed(Failure::from(&e))),
                        }
                    }
                };
                recorder.lock().expect("recorder").end(id, micros(tokio::time::Instant::now() - start), attempts, end);
            }
        }
    };
    let keys = Arc::new(workload.affinity.map(Keys::new));
    let pick_tool = {
        let (rng, mix) = (rng.clone(), workload.mix.clone());
        move || {
            let mut rng = rng.lock().expect("rng");
            let mut x = rng.below(total);
            let mut tool = mix.len().saturating_sub(1);
            for (i, (_, w)) in mix.iter().enumerate() {
                if x < *w {
                    tool = i;
                    break;
                }
                x -= w;
            }
            // Drawn only when the workload has keys, so that a workload without them draws
            // what it always did.
            (tool, keys.as_ref().as_ref().map(|k| k.draw(&mut rng)))
        }
    };
    let new_id = move || {
        let mut n = next_id.lock().expect("ids");
        (*n < MAX_CALLS).then(|| {
            *n += 1;
            *n
        })
    };
    // Finished calls are reaped as new ones start: a finished task's future is freed only
    // once its handle is joined, so keeping every handle would hold every call until the end.
    let mut tasks = tokio::task::JoinSet::new();
    let offered = match workload.arrivals {
        Arrivals::Callers(n) => {
            let think = workload.think;
            for _ in 0..n {
                let (call, pick_tool, new_id) = (call.clone(), pick_tool.clone(), new_id.clone());
                tasks.spawn(async move {
                    while start.elapsed() < duration {
                        let Some(id) = new_id() else { break };
                        let began = tokio::time::Instant::now();
                        call(pick_tool(), id).await;
                        if !think.is_zero() {
                            tokio::time::sleep(think).await;
                        } else if began.elapsed().is_zero() {
                            // turmoil moves time between steps only: a caller whose call took no
                            // simulated time yields to the next tick, or time would never move.
                            tokio::time::sleep(Duration::from_nanos(1)).await;
                        }
                    }
                });
            }
            None
        }
        Arrivals::Poisson(rate) => {
            // Arrivals on a schedule: each is due at its own time, and every arrival that is due
            // is issued at once, however many fall in one tick.
            let mut due = Duration::ZERO;
            let mut offered = 0u64;
            loop {
                let u = rng.lock().expect("rng").unit();
                due = due.saturating_add(Duration::from_secs_f64(-(1.0 - u).ln() / rate.max(1e-9)));
                if due >= duration {
                    break;
                }
                offered += 1;
                if start.elapsed() < due {
                    tokio::time::sleep_until(start + due).await;
                }
                let Some(id) = new_id() else { continue };
                tasks.spawn(call(pick_tool(), id));
                while tasks.try_join_next().is_some() {}
            }
            Some(offered)
        }
    };
    while tasks.join_next().await.is_some() {}
    // Closed-loop callers offer exactly the calls they issue.
    offered.unwrap_or_else(|| recorder.lock().expect("recorder").issued())
}

/// Affinity keys, drawn uniformly or by a Zipf law (by its cumulative weights).
struct Keys {
    keys: u32,
    /// Zipf: the cumulative weight of keys `0..=k`, normalised to end at 1.
    cumulative: Option<Vec<f64>>,
}

impl Keys {
    fn new(a: Affinity) -> Keys {
        let cumulative = a.zipf.map(|s| {
            let mut sum = 0.0;
            let mut c: Vec<f64> = (1..=a.keys)
                .map(|k| {
                    sum += 1.0 / f64::from(k).powf(s);
                    sum
                })
                .collect();
            for v in &mut c {
                *v /= sum;
            }
            c
        });
        Keys { keys: a.keys.max(1), cumulative }
    }

    fn draw(&self, rng: &mut SeededRng) -> u32 {
        match &self.cumulative {
            None => rng.below(self.keys),
            Some(c) => {
                let u = rng.unit();
                let i = c.partition_point(|&v| v <= u);
                u32::try_from(i).unwrap_or(u32::MAX).min(self.keys - 1)
            }
        }
    }
}

/// Whether `text` is the honest answer to call `id`: a simulated server answers `tool:id`, and a
/// byzantine one something else (`crate::server`).
fn honest(text: &str, id: u64) -> bool {
    text.rsplit_once(':').is_some_and(|(tool, call)| !tool.contains(':') && call.parse() == Ok(id))
}

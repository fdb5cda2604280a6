//! Aggregated fan-out: one call sent to every replica of a tool's first tier, answers combined
//! as they arrive, and the replicas still working cancelled as soon as the answer is settled
//! (`gauntlet_core::aggregate::Aggregation::settled`): `first` and `fastest` at the first
//! success, `majority` and `quorum` once enough agree or agreement has become impossible.

use gauntlet_core::aggregate::{self, Aggregation, Answer};
use gauntlet_core::outcome::Outcome;
use rmcp::model::JsonObject;
use serde_json::Value;

use crate::call::{InFlight, first_of};
use crate::client::{CallError, CallOptions, MultiServerClient};

impl MultiServerClient {
    /// Sends `tool` to every available replica of its first tier (at most
    /// [`MAX_FAN_OUT`](gauntlet_core::policy::MAX_FAN_OUT)) and aggregates the answers.
    /// Returns the aggregated value's JSON and the servers it came from (the agreeing ones for
    /// a vote).
    pub async fn call_all(
        &self,
        tool: &str,
        arguments: JsonObject,
        aggregation: Aggregation,
    ) -> Result<(Value, Vec<String>), CallError> {
        let shared = &self.shared;
        let options = CallOptions::default();
        let (call, attempts) = {
            let now = shared.now();
            let mut engine = shared.engine();
            let mut call = engine.begin(tool, None, None, now).map_err(|_| CallError::UnknownTool(tool.to_owned()))?;
            let mut attempts = Vec::new();
            engine.fan_out(&mut call, now, &mut attempts);
            (call, attempts)
        };
        if attempts.is_empty() {
            return Err(CallError::NoServer { tool: tool.to_owned(), tried: Vec::new() });
        }
        let asked = attempts.len();
        let mut in_flight: Vec<InFlight<'_>> = attempts
            .into_iter()
            .map(|a| Box::pin(self.attempt(&call, a, &arguments, &options)) as InFlight<'_>)
            .collect();
        let mut answers = Vec::with_capacity(asked);
        while !in_flight.is_empty() {
            let done = first_of(&mut in_flight).await;
            let now = shared.now();
            shared.engine().end(done.attempt, done.outcome, now);
            let result = match (done.outcome, done.result) {
                (Outcome::Success, Some(r)) => serde_json::to_value(&r).map_err(|e| e.to_string()),
                (outcome, _) => Err(outcome.to_string()),
            };
            let latency = now.saturating_since(done.attempt.started);
            answers.push(Answer { server: done.attempt.server, latency, result });
            if aggregation.settled(&answers, asked) {
                break;
            }
        }
        // The rest are not needed: dropping them cancels them.
        drop(in_flight);
        let names = |ids: &[gauntlet_core::ServerId]| shared.names(ids);
        let pick = |a: &Answer| (a.result.clone().unwrap_or_default(), names(&[a.server]));
        let agreed = |a: aggregate::Agreement<'_>| (a.value.clone(), names(&a.agreeing));
        Ok(match aggregation {
            Aggregation::First => aggregate::first(&answers).map(pick)?,
            Aggregation::Fastest => aggregate::fastest(&answers).map(pick)?,
            Aggregation::All => aggregate::all(&answers).map(|m| {
                let values = m.answers.iter().map(|(_, v)| (*v).clone()).collect();
                let servers: Vec<_> = m.answers.iter().map(|(s, _)| *s).collect();
                (Value::Array(values), names(&servers))
            })?,
            Aggregation::Majority | Aggregation::Quorum(_) => {
                let k = aggregation.needed(asked).unwrap_or(1);
                aggregate::quorum(&answers, k).map(agreed)?
            }
        })
    }
}

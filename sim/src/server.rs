//! A simulated MCP server: an rmcp server on its own turmoil host.
//!
//! It answers `tools/list` with its group's tools (with the annotations the scenario gives,
//! truthful or not) and `tools/call` after a service time drawn from its own seeded stream,
//! failing with the group's error rate. Calls to truly unsafe tools are written to the run's
//! receipt log (by the `call` argument the workload puts in every request), so a checker can
//! see a side effect happen twice whatever the server claimed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_core::SeededRng;
use gauntlet_core::workflow::IDEMPOTENCY_META;
use std::borrow::Cow;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, DiscoverResult, ErrorCode, ErrorData,
    InitializeResult, JsonObject, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, Tool,
    ToolAnnotations,
};
use rmcp::service::{MaybeSendFuture, RequestContext, RoleServer};
use rmcp::{Peer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use crate::scenario::{ProtocolEra, ServerGroup, ServiceTime, SimTool};

/// The port every simulated server listens on.
pub const PORT: u16 = 7000;

/// Side effects of truly unsafe tools, shared by the servers of a run.
pub(crate) type Receipts = Arc<Mutex<ReceiptLog>>;

/// How many times servers executed each truly unsafe call: one bit per call id the workload can
/// issue (a quarter of a megabyte at most), and a count for each call executed more than once,
/// so its size follows the calls that broke the rule, not the calls issued.
#[derive(Debug, Default)]
pub(crate) struct ReceiptLog {
    once: Vec<u64>,
    counts: BTreeMap<u64, u32>,
}

impl ReceiptLog {
    /// Call `call` took effect once more.
    pub(crate) fn record(&mut self, call: u64) {
        let bit = usize::try_from(call).ok().filter(|_| call <= crate::workload::MAX_CALLS);
        let Some(bit) = bit else {
            // Not an id the workload issues: counted exactly, from the first time.
            let n = self.counts.entry(call).or_insert(0);
            *n = n.saturating_add(1);
            return;
        };
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.once.len() <= word {
            self.once.resize(word + 1, 0);
        }
        if self.once[word] & mask == 0 {
            self.once[word] |= mask;
        } else {
            let n = self.counts.entry(call).or_insert(1);
            *n = n.saturating_add(1);
        }
    }

    /// The calls that took effect more than once, and how many times, by id.
    pub(crate) fn duplicates(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.counts.iter().filter(|&(_, &n)| n > 1).map(|(&call, &n)| (call, n))
    }
}

/// Answers servers sent to aggregated calls in flight: call id → (server, answer), for the
/// majority checker. The recorder opens a call's entry when it starts and takes it when it
/// checks the call; servers add to open entries only, so answers to a call already checked are
/// not kept.
pub(crate) type Answers = Arc<Mutex<BTreeMap<u64, Vec<(String, String)>>>>;

/// What servers saw of workflow calls (calls carrying an idempotency key), by key: the truth
/// the workflow checkers judge the client against.
pub(crate) type FlowCalls = Arc<Mutex<FlowLog>>;

/// One idempotency key's calls, as the servers saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyCalls {
    /// When a call with it first arrived (simulated time since the simulation began).
    pub(crate) received: Duration,
    /// When one was first answered with a result.
    pub(crate) answered: Option<Duration>,
    /// How many times a server executed it (a truly unsafe tool's effect each time).
    pub(crate) executed: u32,
    /// Whether its tool is truly unsafe.
    pub(crate) truly_unsafe: bool,
}

/// Workflow calls by idempotency key. A run's keys are bounded by its steps and their
/// attempts, and the runs by the workload's limit on calls.
#[derive(Debug, Default)]
pub(crate) struct FlowLog {
    pub(crate) keys: BTreeMap<String, KeyCalls>,
}

/// A simulated server's result for a workflow call: the tool and the arguments it was given,
/// as structured content (and as its text). A pure function of the call, so a checker can say
/// what an uninterrupted run's results are.
pub(crate) fn flow_result(tool: &str, args: Option<&JsonObject>) -> CallToolResult {
    CallToolResult::structured(json!({ "tool": tool, "args": args.cloned().unwrap_or_default() }))
}

/// A server just (re)started answers this many times slower, ramping down linearly to its
/// normal service time over its group's warm-up.
pub const COLD_FACTOR: f64 = 10.0;

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut SeededRng) -> f64 {
    let u1 = rng.unit().max(f64::MIN_POSITIVE);
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The z-score of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874;

pub(crate) fn sample(service: ServiceTime, rng: &mut SeededRng) -> Duration {
    match service {
        ServiceTime::Constant(d) => d,
        ServiceTime::Uniform(lo, hi) => lo + (hi.saturating_sub(lo)).mul_f64(rng.unit()),
        ServiceTime::LogNormal { median, p99 } => {
            let sigma = (p99.as_secs_f64() / median.as_secs_f64().max(1e-9)).ln().max(0.0) / Z99;
            median.mul_f64((sigma * normal(rng)).exp().min(1e6))
        }
        ServiceTime::Pareto { min, alpha } => {
            // Inverse transform; capped at 10^4 × min so one draw cannot stall a run.
            let u = (1.0 - rng.unit()).max(f64::MIN_POSITIVE);
            min.mul_f64(u.powf(-1.0 / alpha.max(1.0 + 1e-9)).min(1e4))
        }
    }
}

/// Behaviour a fault switches on and off from the outer step loop.
#[derive(Clone, Debug, Default)]
pub(crate) struct Knobs {
    /// An error rate that replaces the group's (a brownout).
    pub(crate) error_rate: Option<f64>,
    /// Every answer is wrong.
    pub(crate) byzantine: bool,
    /// Tools, and the extra service time each gets (a tool listed twice gets both).
    pub(crate) slow_tools: Vec<(String, Duration)>,
    /// A tool list that replaces the group's.
    pub(crate) tools: Option<Vec<SimTool>>,
}

#[derive(Clone)]
pub(crate) struct SimServer {
    pub(crate) name: String,
    pub(crate) group: ServerGroup,
    pub(crate) rng: Arc<Mutex<SeededRng>>,
    pub(crate) receipts: Receipts,
    pub(crate) knobs: Arc<Mutex<Knobs>>,
    /// Capacity: slots, and calls waiting for one.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    pub(crate) waiting: Arc<std::sync::atomic::AtomicU32>,
    /// Answers to aggregated calls.
    pub(crate) answers: Answers,
    /// Workflow calls.
    pub(crate) flow_calls: FlowCalls,
    /// Rung from the outer step loop when the tool list changed.
    pub(crate) list_changed: Arc<tokio::sync::Notify>,
    /// When the host last restarted (`None`: it never did; it was warm when the run began).
    pub(crate) started: Arc<Mutex<Option<tokio::time::Instant>>>,
    /// Whether the host has booted once.
    pub(crate) booted: Arc<std::sync::atomic::AtomicBool>,
}

impl SimServer {
    /// The tools offered now: the group's, or a list-change fault's.
    fn offered(&self) -> Vec<SimTool> {
        self.knobs.lock().expect("knobs").tools.clone().unwrap_or_else(|| self.group.tools.clone())
    }

    /// How much slower than normal a call is now (slow start after a restart).
    fn cold_factor(&self) -> f64 {
        let (Some(warmup), Some(started)) = (self.group.warmup, *self.started.lock().expect("started")) else {
            return 1.0;
        };
        let warm = started.elapsed().as_secs_f64() / warmup.as_secs_f64().max(1e-9);
        if warm >= 1.0 { 1.0 } else { COLD_FACTOR - (COLD_FACTOR - 1.0) * warm }
    }

    fn tools(&self) -> Vec<Tool> {
        self.offered()
            .iter()
            .map(|t| {
                let schema = Arc::new(JsonObject::from_iter([("type".to_owned(), json!("object"))]));
                Tool::new(t.name.clone(), "simulated", schema)
                    .with_annotations(ToolAnnotations::new().read_only(t.read_only).idempotent(t.idempotent))
            })
            .collect()
    }

    async fn call(&self, request: CallToolRequestParams, key: Option<String>) -> Result<CallToolResult, ErrorData> {
        use std::sync::atomic::Ordering;
        if let Some(key) = &key {
            let now = turmoil::sim_elapsed().unwrap_or_default();
            self.flow_calls
                .lock()
                .expect("flow calls")
                .keys
                .entry(key.clone())
                .or_insert(KeyCalls { received: now, ..KeyCalls::default() });
        }
        let _slot = match self.group.capacity {
            None => None,
            Some(_) => match self.slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) if self.waiting.load(Ordering::Relaxed) >= self.group.queue => {
                    return Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "overloaded", None));
                }
                Err(_) => {
                    self.waiting.fetch_add(1, Ordering::Relaxed);
                    let slot = self.slots.clone().acquire_owned().await;
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    slot.ok()
                }
            },
        };
        let knobs = self.knobs.lock().expect("knobs").clone();
        let (delay, fail, wrong) = {
            let mut rng = self.rng.lock().expect("server rng");
            let mut delay = sample(self.group.service, &mut rng).mul_f64(self.cold_factor());
            for (tool, extra) in &knobs.slow_tools {
                if *tool == request.name {
                    delay = delay.saturating_add(*extra);
                }
            }
            let fail = rng.unit() < knobs.error_rate.unwrap_or(self.group.error_rate);
            let wrong = knobs.byzantine || rng.unit() < self.group.wrong_rate;
            (delay, fail, wrong)
        };
        tokio::time::sleep(delay).await;
        if fail {
            return Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "simulated failure", None));
        }
        let Some(tool) = self.offered().into_iter().find(|t| t.name == request.name) else {
            return Err(ErrorData::new(ErrorCode::INVALID_PARAMS, "no such tool", None));
        };
        let arguments = request.arguments.as_ref();
        if let Some(key) = key {
            let now = turmoil::sim_elapsed().unwrap_or_default();
            let mut log = self.flow_calls.lock().expect("flow calls");
            let k = log.keys.entry(key).or_default();
            // A deduplicating server applies a key once; a repeat answers the same, no effect.
            if !(tool.deduplicates() && k.executed > 0) {
                k.executed = k.executed.saturating_add(1);
            }
            k.truly_unsafe = tool.truly_unsafe;
            k.answered.get_or_insert(now);
            return Ok(flow_result(&tool.name, arguments));
        }
        let call = arguments.and_then(|a| a.get("call")).and_then(Value::as_u64).unwrap_or(u64::MAX);
        if tool.truly_unsafe {
            self.receipts.lock().expect("receipts").record(call);
        }
        let answer =
            if wrong { format!("{}:{call}:wrong:{}", tool.name, self.name) } else { format!("{}:{call}", tool.name) };
        if arguments.and_then(|a| a.get("fanout")).is_some()
            && let Some(given) = self.answers.lock().expect("answers").get_mut(&call)
        {
            given.push((self.name.clone(), answer.clone()));
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(answer)]))
    }
}

impl ServerHandler for SimServer {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().enable_tool_list_changed().build())
            .with_server_info(rmcp::model::Implementation::new(self.name.clone(), "sim"))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        match self.group.era {
            ProtocolEra::Modern => Cow::Borrowed(&[ProtocolVersion::V_2026_07_28]),
            ProtocolEra::Legacy | ProtocolEra::Both => Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS),
        }
    }

    fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, ErrorData>> + MaybeSendFuture + '_ {
        // A legacy server predates `server/discover`: "method not found", as older SDKs answer.
        let result = if self.group.era == ProtocolEra::Legacy {
            Err(ErrorData::new(ErrorCode::METHOD_NOT_FOUND, "Method not found", None))
        } else {
            Ok(DiscoverResult::from_server_info(self.supported_protocol_versions().into_owned(), self.get_info()))
        };
        std::future::ready(result)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult { tools: self.tools(), ..Default::default() })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let key = context.meta.0.get(IDEMPOTENCY_META).and_then(Value::as_str).map(str::to_owned);
        self.call(request, key).await.map(CallToolResponse::Complete)
    }
}

/// A server host's main: accept connections and serve each with rmcp. Re-run on restart.
pub(crate) async fn serve(server: SimServer) -> Result<(), Box<dyn std::error::Error>> {
    if server.booted.swap(true, std::sync::atomic::Ordering::Relaxed) {
        *server.started.lock().expect("started") = Some(tokio::time::Instant::now());
    }
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
    let peers: Arc<Mutex<Vec<Peer<RoleServer>>>> = Arc::default();
    // Tell every connected client when a fault changes the tool list.
    let (changed, watched) = (server.list_changed.clone(), peers.clone());
    tokio::spawn(async move {
        loop {
            changed.notified().await;
            let peers = watched.lock().expect("peers").clone();
            for peer in peers {
                let _ = peer.notify_tool_list_changed().await;
            }
        }
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let (server, peers) = (server.clone(), peers.clone());
        tokio::spawn(async move {
            if let Ok(running) = server.serve(stream).await {
                peers.lock().expect("peers").push(running.peer().clone());
                let _ = running.waiting().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_normal_service_time_has_its_median_and_p99() {
        let mut rng = SeededRng::new(3);
        let service = ServiceTime::LogNormal { median: Duration::from_millis(20), p99: Duration::from_millis(80) };
        let mut xs: Vec<f64> = (0..20_000).map(|_| sample(service, &mut rng).as_secs_f64() * 1e3).collect();
        xs.sort_by(f64::total_cmp);
        let (p50, p99) = (xs[10_000], xs[19_800]);
        assert!((p50 - 20.0).abs() < 1.0, "median {p50}");
        assert!((p99 - 80.0).abs() < 8.0, "p99 {p99}");
    }
}

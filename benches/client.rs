//! `client/calls/<n>`: the client's overhead. The same three in-process rmcp servers (over
//! in-memory pipes) are called `BATCH` times with `IN_FLIGHT` calls in flight, once directly with
//! rmcp (round-robin over the three peers: the baseline) and once through `MultiServerClient`
//! (routing, balancing, breaker, budget, metrics, the ordered in-flight table). Both negotiate
//! the same protocol era. The ratio of their throughputs, from batches alternated in one loop,
//! is the figure to quote; the target is ≥ 0.8.
//!
//! `client/flow-overhead`: the workflow executor's coordination cost per step. The same calls,
//! `FLOW_STEPS` at once, `FLOW_RUNS` times: once as the steps of a workflow run through
//! `flow::run` (planning, templates, events, the journal's calls into a journal that stores
//! nothing: its cost is `journal/*` in the workflow bench), once straight through the client
//! with the same idempotency keys. The difference per step, from alternated rounds, is the
//! figure; the target is ≤ 10 µs.

mod common;

use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gauntlet_client::CallOptions;
use gauntlet_client::config::Config;
use gauntlet_client::flow::{self, FlowOptions, Journal, JournalError, SharedJournal};
use gauntlet_client::{ConnectError, Connected, Connector, HandlerToken, MultiServerClient};
use gauntlet_core::workflow::{Builder, Record, Status, StepSpec, Workflow};
use rmcp::model::ProtocolVersion;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, InitializeResult, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ServerHandler, ServiceExt};
use serde_json::json;

const SERVERS: usize = 3;
const BATCH: usize = 2_000;
const IN_FLIGHT: usize = 16;
const PIPE_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = Arc::new(JsonObject::from_iter([("type".to_owned(), json!("object"))]));
        let tool = Tool::new("echo", "echo", schema).with_annotations(ToolAnnotations::new().read_only(true));
        Ok(ListToolsResult { tools: vec![tool], ..Default::default() })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let text = request.arguments.and_then(|a| a.get("text").cloned()).unwrap_or_default().to_string();
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![ContentBlock::text(text)])))
    }
}

/// Connects each configured server to a fresh in-process `Echo` over a duplex pipe.
struct InProcess;

impl Connector for InProcess {
    fn connect<'a>(
        &'a self,
        _server: &'a gauntlet_client::config::ServerConfig,
        handler: HandlerToken,
    ) -> Pin<Box<dyn Future<Output = Result<Connected, ConnectError>> + Send + 'a>> {
        Box::pin(async move {
            let (client_io, server_io) = tokio::io::duplex(PIPE_BYTES);
            tokio::spawn(async move {
                if let Ok(running) = Echo.serve(server_io).await {
                    let _ = running.waiting().await;
                }
            });
            let (read, write) = tokio::io::split(client_io);
            handler.handshake(read, write).await
        })
    }
}

/// A `MultiServerClient` over `SERVERS` in-process `Echo` servers in one group, round-robin.
fn in_process_client(runtime: &tokio::runtime::Runtime) -> MultiServerClient {
    let servers: serde_json::Map<_, _> = (0..SERVERS)
        .map(|i| (format!("s{i}"), json!({"type": "tcp", "address": "127.0.0.1:9", "group": "g", "trusted": true})))
        .collect();
    let config =
        Config::parse(&json!({"mcpServers": servers, "gauntlet": {"balancer": "round-robin"}}).to_string(), &|_| None)
            .expect("config");
    runtime.block_on(async {
        let client = MultiServerClient::start_with(config, InProcess);
        client.wait_ready(Duration::from_secs(10)).await;
        client
    })
}

#[derive(Clone, Default)]
struct RawClient;
impl ClientHandler for RawClient {}

fn args(i: usize) -> JsonObject {
    JsonObject::from_iter([("text".to_owned(), json!(format!("m{i}")))])
}

/// Makes `BATCH` calls, `IN_FLIGHT` at a time, each by `call(i)`.
async fn drive<F, Fut>(call: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (call, next) = (call.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= BATCH {
                    break;
                }
                call(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

async fn raw_batch(peers: &[rmcp::Peer<rmcp::RoleClient>]) {
    let peers = Arc::new(peers.to_vec());
    drive(move |i| {
        let peers = peers.clone();
        async move {
            let params = CallToolRequestParams::new("echo").with_arguments(args(i));
            black_box(peers[i % SERVERS].call_tool(params).await.expect("raw call"));
        }
    })
    .await;
}

async fn gauntlet_batch(client: &Arc<MultiServerClient>) {
    let client = client.clone();
    drive(move |i| {
        let client = client.clone();
        async move {
            black_box(client.call_tool("g__echo", args(i)).await.expect("gauntlet call"));
        }
    })
    .await;
}

fn calls(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let peers: Vec<_> = runtime.block_on(async {
        let mut peers = Vec::new();
        let mut keep = Vec::new();
        for _ in 0..SERVERS {
            let (client_io, server_io) = tokio::io::duplex(PIPE_BYTES);
            tokio::spawn(async move {
                if let Ok(running) = Echo.serve(server_io).await {
                    let _ = running.waiting().await;
                }
            });
            // The same lifecycle Gauntlet negotiates (discover, 2026-07-28), so both sides send
            // the same messages.
            let lifecycle = ClientLifecycleMode::Auto {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
            };
            let running = RawClient.serve_with_lifecycle(client_io, lifecycle).await.expect("raw handshake");
            peers.push(running.peer().clone());
            keep.push(running);
        }
        std::mem::forget(keep); // the services live for the whole bench
        peers
    });
    let client = Arc::new(in_process_client(&runtime));
    let mut group = c.benchmark_group("client/calls");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("raw-rmcp", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                runtime.block_on(raw_batch(&peers));
            }
            start.elapsed()
        });
    });
    group.bench_function("gauntlet", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                runtime.block_on(gauntlet_batch(&client));
            }
            start.elapsed()
        });
    });
    group.finish();

    // The ratio of throughputs, gauntlet / raw, is raw time / gauntlet time.
    let ratio = common::alternated(
        RATIO_ROUNDS,
        || runtime.block_on(gauntlet_batch(&client)),
        || runtime.block_on(raw_batch(&peers)),
    );
    common::report(&format!(
        "client/ratio: gauntlet / raw-rmcp throughput, median of {RATIO_ROUNDS} alternated rounds: {ratio}"
    ));
}

/// Alternated rounds for the throughput ratio.
const RATIO_ROUNDS: usize = 40;

/// Steps of the overhead workflow: independent, all in flight at once (as many as the other
/// sides keep in flight).
const FLOW_STEPS: usize = IN_FLIGHT;
/// Runs per round: the same number of calls as a batch.
const FLOW_RUNS: usize = BATCH / FLOW_STEPS;

/// A journal that keeps nothing, so the executor's own work is what is timed.
struct Forget;

impl Journal for Forget {
    fn append(&mut self, _run: u64, _record: &Record, _sync: bool) -> Result<(), JournalError> {
        Ok(())
    }
    fn records(&mut self, _run: u64) -> Result<Vec<Record>, JournalError> {
        Ok(Vec::new())
    }
    fn runs(&mut self) -> Result<Vec<u64>, JournalError> {
        Ok(Vec::new())
    }
}

/// `FLOW_STEPS` independent echo steps, each with a templated argument.
fn overhead_workflow() -> Workflow {
    let steps = (0..FLOW_STEPS)
        .map(|i| StepSpec::call(&format!("s{i}"), "g__echo", json!({ "text": format!("${{input.text}}-{i}") })));
    steps.fold(Builder::new("overhead").max_parallel(FLOW_STEPS as u32), Builder::step).build().expect("valid")
}

async fn flow_batch(client: &MultiServerClient, workflow: &Workflow, journal: &SharedJournal) {
    for run in 0..FLOW_RUNS as u64 {
        let report = flow::run(client, workflow, run, json!({ "text": "m" }), journal, &FlowOptions::default())
            .await
            .expect("flow run");
        assert_eq!(report.status, Status::Completed);
    }
}

/// The same calls as `flow_batch`, straight through the client.
async fn direct_batch(client: &MultiServerClient) {
    for run in 0..FLOW_RUNS as u64 {
        let calls: Vec<_> = (0..FLOW_STEPS)
            .map(|i| {
                let args = JsonObject::from_iter([("text".to_owned(), json!(format!("m-{i}")))]);
                let options =
                    CallOptions { idempotency_key: Some(flow::key(run, &format!("s{i}"), "")), ..Default::default() };
                client.call_tool_with("g__echo", args, options)
            })
            .collect();
        for r in join_all(calls).await {
            black_box(r.expect("direct call"));
        }
    }
}

/// Every future's output, polled together in one task (as the executor polls a run's steps).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Not a criterion measure (a difference of two timed sides); `c` is unused.
fn flow_overhead(_c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let client = in_process_client(&runtime);
    let workflow = overhead_workflow();
    let journal: SharedJournal = Arc::new(std::sync::Mutex::new(Forget));
    // Warm both paths up once.
    runtime.block_on(flow_batch(&client, &workflow, &journal));
    runtime.block_on(direct_batch(&client));
    let steps = (FLOW_RUNS * FLOW_STEPS) as f64;
    let (mut extra, mut ratios) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_ROUNDS {
        let t = Instant::now();
        runtime.block_on(flow_batch(&client, &workflow, &journal));
        let flow = t.elapsed().as_secs_f64();
        let t = Instant::now();
        runtime.block_on(direct_batch(&client));
        let direct = t.elapsed().as_secs_f64();
        extra.push((flow - direct) / steps * 1e6);
        ratios.push(flow / direct);
    }
    common::report(&format!(
        "client/flow-overhead: a workflow step's time beyond the same call made directly, µs, median of \
         {RATIO_ROUNDS} alternated rounds of {FLOW_RUNS} runs x {FLOW_STEPS} steps: {}; flow / direct time: {}",
        common::Spread::of(extra),
        common::Spread::of(ratios)
    ));
}

criterion_group!(benches, calls, flow_overhead);
criterion_main!(benches);

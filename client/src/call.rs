//! The call pipeline: one logical call, asking the engine at each decision point.
//!
//! ```text
//! begin ─▶ pick ─▶ attempt ──────────────▶ finish ─▶ Done | Retry(after) ─▶ pick … | GiveUp
//!                     └─ hedge: Wait(d) … Send ─▶ backup attempt (the first answer wins)
//! ```
//!
//! Every attempt has exactly one recorded end: [`Engine::finish`] when its answer is in, or
//! [`Engine::cancel`] from its guard when it is dropped first (a hedge's loser, a call whose
//! caller went away). Dropping an attempt cancels its upstream request (its session sends
//! `notifications/cancelled`, and sends every one before it closes).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use gauntlet_core::cache::CacheKey;
use gauntlet_core::outcome::Outcome;
use gauntlet_core::policy::{Attempt, Call, Hedge, Next};
use gauntlet_core::workflow::IDEMPOTENCY_META;
use gauntlet_core::{ServerId, Time};
use rmcp::model::{CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, JsonObject, ServerResult};
use rmcp::service::{PeerRequestOptions, RequestHandle, RoleClient, ServiceError};
use serde_json::Value;

use crate::client::{CallError, CallOptions, CallReport, MultiServerClient};
use crate::session::{self, ProgressRoutes, Session};
use crate::shared::Shared;

/// The end of one attempt.
pub(crate) struct AttemptEnd {
    pub(crate) attempt: Attempt,
    pub(crate) outcome: Outcome,
    pub(crate) sent: bool,
    pub(crate) result: Option<CallToolResult>,
}

pub(crate) type InFlight<'a> = Pin<Box<dyn Future<Output = AttemptEnd> + Send + 'a>>;

impl MultiServerClient {
    /// Calls `tool` (an exposed name) with `arguments`.
    pub async fn call_tool(&self, tool: &str, arguments: JsonObject) -> Result<CallReport, CallError> {
        self.call_tool_with(tool, arguments, CallOptions::default()).await
    }

    /// Calls `tool` with options. Logged (at debug level) in a `call` span carrying the call's
    /// correlation id (its number in this client), the tool, and at its end the attempts and the
    /// servers tried.
    pub async fn call_tool_with(
        &self,
        tool: &str,
        arguments: JsonObject,
        options: CallOptions,
    ) -> Result<CallReport, CallError> {
        use tracing::Instrument as _;
        let id = self.shared.calls.fetch_add(1, Ordering::Relaxed);
        let span =
            tracing::debug_span!("call", id, tool, attempts = tracing::field::Empty, servers = tracing::field::Empty);
        let result = self.call(tool, arguments, options).instrument(span.clone()).await;
        if !span.is_disabled() {
            match &result {
                Ok(r) => {
                    span.record("attempts", r.attempts);
                    span.record("servers", tracing::field::debug(&r.tried));
                    tracing::debug!(parent: &span, server = %r.server, cached = r.cached, hedged = r.hedged, "answered");
                }
                Err(e) => tracing::debug!(parent: &span, error = %e, "failed"),
            }
        }
        result
    }

    async fn call(&self, tool: &str, arguments: JsonObject, options: CallOptions) -> Result<CallReport, CallError> {
        let shared = &self.shared;
        let (mut call, cache_key) = {
            let now = shared.now();
            let mut engine = shared.engine();
            let call = engine
                .begin(tool, options.deadline, options.affinity, now)
                .map_err(|_| CallError::UnknownTool(tool.to_owned()))?;
            let key = engine.caches(&call).then(|| CacheKey::call(tool, &Value::Object(arguments.clone())));
            if let Some(hit) = key.as_ref().and_then(|k| engine.cached(k, now))
                && let Ok(result) = serde_json::from_value::<CallToolResult>(hit)
            {
                return Ok(CallReport {
                    result,
                    server: String::new(),
                    attempts: 0,
                    tried: Vec::new(),
                    latency: std::time::Duration::ZERO,
                    hedged: false,
                    cached: true,
                });
            }
            (call, key)
        };
        // Every server sent to, in order (hedges included); names are resolved when reporting.
        let mut sent_to: Vec<ServerId> = Vec::with_capacity(2);
        loop {
            let picked = shared.engine().pick(&mut call, shared.now());
            let Some(first) = picked else {
                return Err(CallError::NoServer { tool: tool.to_owned(), tried: shared.names(&sent_to) });
            };
            sent_to.push(first.server);
            let (done, next) = if call.may_hedge() {
                self.race(&mut call, first, &arguments, &options, &mut sent_to).await
            } else {
                // No backup can be sent: the attempt alone, with no race to set up.
                let done = self.attempt(&call, first, &arguments, &options).await;
                let next = shared.engine().finish(&mut call, done.attempt, done.outcome, done.sent, shared.now());
                (done, next)
            };
            match next {
                Next::Done => {
                    let result = done.result.expect("an answer carries its result");
                    if done.outcome == Outcome::Success
                        && let Some(key) = cache_key
                        && let Ok(value) = serde_json::to_value(&result)
                    {
                        shared.engine().store(key, value, shared.now());
                    }
                    return Ok(CallReport {
                        result,
                        server: shared.name(done.attempt.server).to_owned(),
                        attempts: call.attempts(),
                        tried: shared.names(&sent_to),
                        latency: shared.now().saturating_since(call.started()),
                        hedged: call.hedged(),
                        cached: false,
                    });
                }
                Next::Retry(after) => tokio::time::sleep(after).await,
                Next::GiveUp(reason) => {
                    return Err(CallError::Failed {
                        tool: tool.to_owned(),
                        attempts: call.attempts(),
                        last: done.outcome,
                        reason,
                        tried: shared.names(&sent_to),
                    });
                }
                Next::Wait => unreachable!("waiting is handled in the loop above"),
            }
        }
    }

    /// The attempt `first` and the backups the engine allows while it is in flight; the first
    /// answer wins and the others are dropped (cancelled). Returns the deciding attempt's end and
    /// what the engine decided after it.
    async fn race(
        &self,
        call: &mut Call,
        first: Attempt,
        arguments: &JsonObject,
        options: &CallOptions,
        sent_to: &mut Vec<ServerId>,
    ) -> (AttemptEnd, Next) {
        let shared = &self.shared;
        let mut in_flight: Vec<InFlight<'_>> = vec![Box::pin(self.attempt(call, first, arguments, options))];
        let mut ask_hedge = true;
        loop {
            let done = if ask_hedge {
                let hedge = shared.engine().hedge(call, shared.now());
                match hedge {
                    Hedge::Send(backup) => {
                        sent_to.push(backup.server);
                        in_flight.push(Box::pin(self.attempt(call, backup, arguments, options)));
                        continue;
                    }
                    Hedge::Wait(d) => tokio::select! {
                        biased;
                        done = first_of(&mut in_flight) => done,
                        _ = tokio::time::sleep(d) => continue,
                    },
                    Hedge::Never(_) => {
                        ask_hedge = false;
                        continue;
                    }
                }
            } else {
                first_of(&mut in_flight).await
            };
            match shared.engine().finish(call, done.attempt, done.outcome, done.sent, shared.now()) {
                Next::Wait => continue,
                // Whatever is still in flight lost: dropping it cancels it.
                next => return (done, next),
            }
        }
    }

    /// One attempt of `call`, already picked (its permit taken). Holds no borrow of `call`, so
    /// the engine can decide about the call while the attempt is in flight.
    pub(crate) fn attempt<'a>(
        &'a self,
        call: &Call,
        attempt: Attempt,
        arguments: &'a JsonObject,
        options: &'a CallOptions,
    ) -> impl Future<Output = AttemptEnd> + Send + 'a {
        let target = Target {
            server: attempt.server,
            tool: call.tool().clone(),
            exposed: call.exposed().clone(),
            deadline: call.deadline(),
            replayable: call.kind().is_replayable(),
        };
        async move {
            let mut guard = CancelGuard { shared: &self.shared, attempt: Some(attempt) };
            let (outcome, sent, result) = send(&self.shared, &target, arguments, options).await;
            guard.attempt = None;
            AttemptEnd { attempt, outcome, sent, result }
        }
    }
}

/// Waits for the first of `futures` to finish (polled in order, so ties resolve by index) and
/// removes it.
pub(crate) async fn first_of<F: Future + Unpin>(futures: &mut Vec<F>) -> F::Output {
    let (out, index) = std::future::poll_fn(|cx| {
        for (i, f) in futures.iter_mut().enumerate() {
            if let Poll::Ready(out) = Pin::new(f).poll(cx) {
                return Poll::Ready((out, i));
            }
        }
        Poll::Pending
    })
    .await;
    drop(futures.remove(index));
    out
}

/// Where one attempt goes, and what the engine says of its call.
struct Target {
    server: ServerId,
    tool: Arc<str>,
    exposed: Arc<str>,
    /// The call's deadline.
    deadline: Time,
    /// Whether the engine may replay the call (a recycled session fails it at once).
    replayable: bool,
}

/// Sends one request and classifies its end. Returns (outcome, sent, result).
async fn send(
    shared: &Shared,
    target: &Target,
    arguments: &JsonObject,
    options: &CallOptions,
) -> (Outcome, bool, Option<CallToolResult>) {
    let Target { server, ref tool, ref exposed, deadline, replayable } = *target;
    let up = &shared.upstreams[server.index()];
    // The attempt's deadline: the tool's own timeout, else the server's, never past the call's.
    let timeout = shared.config.policy.attempt_timeout(exposed, up.config.call_timeout);
    let attempt_deadline = shared.to_instant(deadline).min(tokio::time::Instant::now() + timeout);
    // A concurrency slot, or a bounded wait for one.
    let _slot = match up.slots.try_acquire() {
        Ok(slot) => slot,
        Err(_) => {
            if up.waiting.load(Ordering::Relaxed) >= up.config.queue {
                return (Outcome::Rejected, false, None);
            }
            up.waiting.fetch_add(1, Ordering::Relaxed);
            let slot = tokio::time::timeout_at(attempt_deadline, up.slots.acquire()).await;
            up.waiting.fetch_sub(1, Ordering::Relaxed);
            match slot {
                Ok(Ok(slot)) => slot,
                _ => return (Outcome::Rejected, false, None),
            }
        }
    };
    let Some(session) = up.session() else { return (Outcome::Transport, false, None) };
    let Some((seq, dead)) = session.in_flight.register(replayable) else { return (Outcome::Transport, false, None) };
    let _registration = Registration { session: &session, seq };
    let mut params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments.clone());
    if let Some(key) = &options.idempotency_key {
        let mut meta = rmcp::model::MetaObject::default();
        meta.0.insert(IDEMPOTENCY_META.to_owned(), Value::String(key.clone()));
        params.meta = Some(rmcp::model::RequestMetaObject(meta));
    }
    let mut progress = ProgressRoute { routes: &shared.progress, key: None };
    let call = async {
        // The request's handle gives the id to cancel and the token progress comes under; a
        // request abandoned before its answer is cancelled through the session, which sends
        // every cancellation before it closes.
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = session.peer.send_request_with_option(request, PeerRequestOptions::no_options()).await?;
        if let Some((token, sink)) = &options.progress {
            let key = (server, session::token_key(&handle.progress_token));
            shared.progress.lock().expect("progress lock").route(key.clone(), token.clone(), sink.clone());
            progress.key = Some(key);
        }
        let mut cancel = CancelOnDrop { session: &session, id: Some(handle.id.clone()) };
        let response = answer(handle, &session, !up.is_http()).await;
        cancel.id = None;
        match response? {
            ServerResult::CallToolResult(result) => Ok(result),
            _ => Err(ServiceError::UnexpectedResponse),
        }
    };
    let mut dead = dead;
    let response = tokio::select! {
        biased;
        _ = &mut dead => Err(None),
        r = call => r.map_err(Some),
        _ = tokio::time::sleep_until(attempt_deadline) => Err(Some(ServiceError::Timeout { timeout })),
    };
    match response {
        Ok(result) => {
            up.note_answer();
            let outcome = if result.is_error == Some(true) { Outcome::ToolError } else { Outcome::Success };
            (outcome, true, Some(result))
        }
        Err(None) => (Outcome::Transport, true, None),
        Err(Some(error)) => {
            let outcome = classify(&error);
            match outcome {
                Outcome::Timeout => up.note_timeout(),
                // Over HTTP a request can fail while the session lives on (each request is its
                // own connection attempt): the attempt fails now, so the engine can retry
                // elsewhere, and the supervisor checks the session at once.
                Outcome::Transport if up.is_http() => up.probe.notify_one(),
                Outcome::Transport => {
                    // A stream transport failing fails the whole session; rmcp wakes its callers
                    // in random order: wait for the supervisor, which fails them in request order.
                    let _ = tokio::time::timeout_at(attempt_deadline, &mut dead).await;
                }
                _ => up.note_answer(),
            }
            (outcome, true, None)
        }
    }
}

/// Awaits a request's answer, deaf to rmcp's wake-ups once the connection has ended.
///
/// When a connection dies, rmcp drops its table of pending requests in a hash map's order,
/// waking each waiter. Were the caller's task woken then, it would be polled at a per-process
/// random point, and a task with other calls in flight (a hedge, a fan-out, a workflow's
/// parallel steps) would act on their answers there, so the engine would see them in a
/// different order in every process. Over a stream transport, the answer is polled with a
/// waker that passes a wake-up on to the caller only while the connection's read side has not
/// ended (an answer is always read before the end); after it, the supervisor wakes the callers,
/// failing their calls in request order. Over HTTP each request has its own connection: not
/// gated.
async fn answer(
    handle: RequestHandle<RoleClient>,
    session: &Session,
    stream: bool,
) -> Result<ServerResult, ServiceError> {
    let response = handle.await_response();
    if !stream {
        return response.await;
    }
    let gate = Arc::new(Gate { ended: session.ended.clone(), caller: std::sync::Mutex::new(None) });
    let waker = Waker::from(gate.clone());
    let mut response = std::pin::pin!(response);
    std::future::poll_fn(|cx| {
        {
            let mut caller = gate.caller.lock().expect("gate lock");
            if !caller.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *caller = Some(cx.waker().clone());
            }
        }
        response.as_mut().poll(&mut Context::from_waker(&waker))
    })
    .await
}

/// The waker [`answer`] polls rmcp's response with.
struct Gate {
    ended: Arc<AtomicBool>,
    caller: std::sync::Mutex<Option<Waker>>,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.ended.load(Ordering::Acquire) {
            return;
        }
        if let Some(caller) = self.caller.lock().expect("gate lock").as_ref() {
            caller.wake_by_ref();
        }
    }
}

/// Classifies an rmcp error.
fn classify(error: &ServiceError) -> Outcome {
    match error {
        ServiceError::McpError(e) => Outcome::RpcError(e.code.0),
        ServiceError::TransportSend(_) | ServiceError::TransportClosed => Outcome::Transport,
        ServiceError::Timeout { .. } => Outcome::Timeout,
        ServiceError::Cancelled { .. } => Outcome::Cancelled,
        _ => Outcome::Malformed,
    }
}

/// Records a dropped attempt as cancelled, so every attempt has exactly one recorded end.
struct CancelGuard<'a> {
    shared: &'a Shared,
    attempt: Option<Attempt>,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if let Some(attempt) = self.attempt.take() {
            let now = self.shared.now();
            self.shared.engine().cancel(attempt, now);
        }
    }
}

struct Registration<'a> {
    session: &'a Session,
    seq: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.session.in_flight.unregister(self.seq);
    }
}

struct ProgressRoute<'a> {
    routes: &'a ProgressRoutes,
    key: Option<(ServerId, String)>,
}

impl Drop for ProgressRoute<'_> {
    fn drop(&mut self) {
        if let Some(key) = &self.key {
            self.routes.lock().expect("progress lock").unroute(key);
        }
    }
}

/// Sends `notifications/cancelled` for a request abandoned before its answer.
struct CancelOnDrop<'a> {
    session: &'a Session,
    id: Option<rmcp::model::RequestId>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.session.cancel(id);
        }
    }
}

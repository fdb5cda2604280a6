//! One live MCP session with one server: connecting over any transport, the rmcp handler that
//! receives the server's notifications, and the ordered table of calls in flight.
//!
//! **The determinism trap** (DESIGN.md): when an rmcp connection dies with several requests in
//! flight, rmcp drops its pending-response `HashMap` in a per-process random order, so callers
//! would wake in a different order in every process. Calls therefore never act on rmcp's own
//! "transport closed" error: each registers in [`Session`]'s in-flight table under a sequence
//! number and waits for the supervisor to fail it, and the supervisor fails the whole table in
//! sequence order when the session dies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{ClientConfig, Implementation, ProgressNotificationParam, ProtocolVersion};
use rmcp::service::{MaybeSendFuture, NotificationContext, RoleClient, RunningService};
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::{ClientCacheConfig, ClientHandler, ClientLifecycleMode, ClientServiceExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use crate::config::{ServerConfig, TransportSpec};
use gauntlet_core::ServerId;

/// The largest single message accepted from a server (a line on stdio and TCP, an SSE event or
/// a JSON response over HTTP). Bigger messages are dropped by the transport: the server is
/// untrusted.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// How much of a child process's stderr is kept (the most recent bytes).
pub const STDERR_KEEP_BYTES: usize = 16 * 1024;

/// The protocol era a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Era {
    /// `initialize` handshake (protocol versions up to 2025-11-25).
    Legacy,
    /// `server/discover` (2026-07-28 and later).
    Modern,
}

impl Era {
    /// The era of a negotiated protocol version.
    pub fn of(version: &ProtocolVersion) -> Era {
        if version.has_initialize() { Era::Legacy } else { Era::Modern }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

/// Something a server said outside of a response.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Notice {
    /// `notifications/tools/list_changed`.
    ToolsChanged(ServerId),
}

/// A progress notification, re-addressed to the caller's own token.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// The caller's token.
    pub token: String,
    /// Progress so far.
    pub progress: f64,
    /// The total, if known.
    pub total: Option<f64>,
    /// A message, if any (its first KiB).
    pub message: Option<String>,
}

/// Where progress notifications go, shared by the sessions and the calls.
pub(crate) type ProgressRoutes = Arc<Mutex<ProgressTable>>;

/// The most progress notifications kept for requests whose route is not known yet.
const EARLY_PROGRESS: usize = 64;

/// (server, upstream progress token) → the caller's token and sink. rmcp assigns each request
/// its own token from a per-connection counter, so the server is part of the key: two
/// upstreams (or a hedge and its original) never share an entry. rmcp tells the token only once
/// the request is sent, so a notification the server sends at once can come before its route:
/// the last [`EARLY_PROGRESS`] such are kept and delivered, in order, when the route is made.
#[derive(Debug, Default)]
pub(crate) struct ProgressTable {
    routes: BTreeMap<(ServerId, String), (String, mpsc::UnboundedSender<Progress>)>,
    early: std::collections::VecDeque<((ServerId, String), Progress)>,
}

impl ProgressTable {
    /// Sends `key`'s progress to `sink` under the caller's `token`, starting with what came early.
    pub(crate) fn route(&mut self, key: (ServerId, String), token: String, sink: mpsc::UnboundedSender<Progress>) {
        // In place: a call with progress allocates nothing here for the others' notifications.
        self.early.retain_mut(|(k, p)| {
            if *k != key {
                return true;
            }
            let message = p.message.take();
            let _ = sink.send(Progress { token: token.clone(), progress: p.progress, total: p.total, message });
            false
        });
        self.routes.insert(key, (token, sink));
    }

    /// Forgets `key`'s route (its call ended).
    pub(crate) fn unroute(&mut self, key: &(ServerId, String)) {
        self.routes.remove(key);
    }

    fn deliver(&mut self, key: (ServerId, String), mut progress: Progress) {
        if let Some((token, sink)) = self.routes.get(&key) {
            progress.token.clone_from(token);
            let _ = sink.send(progress);
            return;
        }
        if self.early.len() == EARLY_PROGRESS {
            self.early.pop_front();
        }
        self.early.push_back((key, progress));
    }
}

/// A progress token as a map key.
pub(crate) fn token_key(token: &rmcp::model::ProgressToken) -> String {
    match &token.0 {
        rmcp::model::NumberOrString::String(s) => s.to_string(),
        rmcp::model::NumberOrString::Number(n) => n.to_string(),
    }
}

/// The rmcp client handler: identifies Gauntlet and forwards notifications.
#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) server: ServerId,
    pub(crate) notices: mpsc::UnboundedSender<Notice>,
    pub(crate) progress: ProgressRoutes,
    /// Set when the connection's read side ends (see [`Session::ended`]).
    pub(crate) ended: Arc<AtomicBool>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("gauntlet", env!("CARGO_PKG_VERSION"));
        info
    }

    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        let _ = self.notices.send(Notice::ToolsChanged(self.server));
        std::future::ready(())
    }

    fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        let key = (self.server, token_key(&params.progress_token));
        if key.1.len() > 32 {
            // Not a token rmcp issued (it issues integers): nothing to route, nothing to keep.
            return std::future::ready(());
        }
        // The server's message is untrusted: kept at most 1 KiB (a char boundary at or below).
        let message = params.message.map(|m| {
            let mut end = m.len().min(1_024);
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            m[..end].to_owned()
        });
        let progress = Progress { token: String::new(), progress: params.progress, total: params.total, message };
        self.progress.lock().expect("progress routes lock").deliver(key, progress);
        std::future::ready(())
    }
}

pub(crate) type Running = RunningService<RoleClient, Handler>;

/// Why a connect failed. Names the cause, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The child process could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The program.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {address}: {source}")]
    Tcp {
        /// Where.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// A header could not be sent.
    #[error("header `{0}` is not valid")]
    Header(String),
    /// The MCP handshake failed.
    #[error("MCP handshake failed: {0}")]
    Handshake(String),
    /// No TLS configuration for an `https://` server: no trusted root, or a bad `caFile`.
    #[error("TLS: {0}")]
    Tls(String),
    /// Connecting took longer than the connect timeout.
    #[error("no MCP handshake within {0:?}")]
    Timeout(Duration),
}

/// What a connect returns: the rmcp service, and the child process when there is one (killed
/// when dropped). Made by [`HandlerToken::handshake`](crate::HandlerToken::handshake) or the
/// configured transports.
pub struct Connected {
    pub(crate) running: Running,
    pub(crate) child: Option<tokio::process::Child>,
    pub(crate) stderr: Option<Arc<Mutex<Vec<u8>>>>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("child", &self.child.as_ref().and_then(tokio::process::Child::id))
            .finish_non_exhaustive()
    }
}

/// How a connection opens: `server/discover` first, falling back to `initialize` when the
/// server says it is legacy ([`Lifecycle::Auto`]); or straight to `initialize`, for a server
/// that answered discover but shares no version with it ([`Lifecycle::Legacy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Auto,
    Legacy,
}

impl Lifecycle {
    fn mode(self) -> ClientLifecycleMode {
        match self {
            Lifecycle::Auto => ClientLifecycleMode::Auto {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
            },
            Lifecycle::Legacy => ClientLifecycleMode::Initialize,
        }
    }
}

/// Whether a failed discover handshake should be retried with `initialize` on a new
/// connection: the server answered, but offered only versions that need `initialize`.
fn needs_legacy_retry(error: &ConnectError) -> bool {
    matches!(error, ConnectError::Handshake(m) if m.contains("no compatible protocol version"))
}

/// Why a handshake failed, with the errors under it `: `-joined: an HTTP client's "error
/// sending request" says why (a refused connection, an untrusted certificate) only in its
/// sources, and rmcp's wrappers hold them without naming them as sources.
fn handshake_error(error: &rmcp::service::ClientInitializeError) -> String {
    match error {
        rmcp::service::ClientInitializeError::TransportError { error, context } => {
            format!("{context}: {}", with_causes(&*error.error))
        }
        other => with_causes(other),
    }
}

fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next
        && parts.len() < 16
    {
        let said = cause.to_string();
        // A wrapper that prints its source says it once.
        if !parts.last().is_some_and(|p| p.contains(&said)) {
            parts.push(said);
        }
        next = match cause.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            Some(StreamableHttpError::Client(inner)) => Some(inner),
            _ => cause.source(),
        };
    }
    parts.join(": ")
}

/// Starts an MCP session over any byte stream: how the simulator plugs in turmoil streams.
pub(crate) async fn connect_io<R, W>(handler: Handler, read: R, write: W) -> Result<Running, ConnectError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    connect_io_with(handler, read, write, Lifecycle::Auto).await
}

async fn connect_io_with<R, W>(
    handler: Handler,
    read: R,
    write: W,
    lifecycle: Lifecycle,
) -> Result<Running, ConnectError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let read = Watched { inner: read, ended: handler.ended.clone() };
    let transport = AsyncRwTransport::new_client(read, write).with_max_line_length(MAX_MESSAGE_BYTES);
    let running = handler
        .serve_with_lifecycle(transport, lifecycle.mode())
        .await
        .map_err(|e| ConnectError::Handshake(handshake_error(&e)))?;
    // rmcp's response cache reads the wall clock and serves stale data on error: Gauntlet
    // caches in `gauntlet_core::cache` instead.
    running.peer().set_response_cache_config(ClientCacheConfig::disabled()).await;
    Ok(running)
}

/// Connects to `config`'s server (no deadline here: the caller bounds it), retrying once with
/// `initialize` on a fresh connection when discover finds no common version.
pub(crate) async fn connect(
    config: &ServerConfig,
    handler: Handler,
    clients: &crate::http::Clients,
) -> Result<Connected, ConnectError> {
    match connect_with(config, handler.clone(), Lifecycle::Auto, clients).await {
        Err(e) if needs_legacy_retry(&e) => connect_with(config, handler, Lifecycle::Legacy, clients).await,
        other => other,
    }
}

async fn connect_with(
    config: &ServerConfig,
    handler: Handler,
    lifecycle: Lifecycle,
    clients: &crate::http::Clients,
) -> Result<Connected, ConnectError> {
    match &config.transport {
        TransportSpec::Stdio { command, args, env } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args)
                .envs(env.iter().map(|(k, v)| (k, v.expose())))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true);
            let mut child = cmd.spawn().map_err(|source| ConnectError::Spawn { command: command.clone(), source })?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(ConnectError::Handshake("child process has no stdio pipes".to_owned()));
            };
            let stderr = child.stderr.take().map(|err| {
                let kept = Arc::new(Mutex::new(Vec::new()));
                tokio::spawn(drain_stderr(err, kept.clone()));
                kept
            });
            let running = connect_io_with(handler, stdout, stdin, lifecycle).await?;
            Ok(Connected { running, child: Some(child), stderr })
        }
        TransportSpec::Tcp { address } => {
            let stream = tokio::net::TcpStream::connect(address)
                .await
                .map_err(|source| ConnectError::Tcp { address: address.clone(), source })?;
            let (read, write) = stream.into_split();
            Ok(Connected {
                running: connect_io_with(handler, read, write, lifecycle).await?,
                child: None,
                stderr: None,
            })
        }
        TransportSpec::Http { url, headers, ca_file } => {
            use rmcp::transport::StreamableHttpClientTransport;
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            // rmcp's API takes a HashMap; nothing iterates it in a way that reaches a decision.
            #[allow(clippy::disallowed_types)]
            let mut custom = std::collections::HashMap::new();
            for (name, value) in headers {
                let n = http::HeaderName::try_from(name.as_str()).map_err(|_| ConnectError::Header(name.clone()))?;
                let v = http::HeaderValue::try_from(value.expose()).map_err(|_| ConnectError::Header(name.clone()))?;
                custom.insert(n, v);
            }
            let client = clients.get(&config.name, ca_file.as_deref())?;
            let transport = StreamableHttpClientTransport::with_client(
                client,
                StreamableHttpClientTransportConfig::with_uri(url.clone())
                    .custom_headers(custom)
                    .max_sse_event_size(MAX_MESSAGE_BYTES)
                    .max_concurrent_requests(config.max_concurrency as usize),
            );
            let running = handler
                .serve_with_lifecycle(transport, lifecycle.mode())
                .await
                .map_err(|e| ConnectError::Handshake(handshake_error(&e)))?;
            running.peer().set_response_cache_config(ClientCacheConfig::disabled()).await;
            Ok(Connected { running, child: None, stderr: None })
        }
    }
}

/// Keeps the last [`STDERR_KEEP_BYTES`] of a child's stderr.
async fn drain_stderr(mut err: tokio::process::ChildStderr, kept: Arc<Mutex<Vec<u8>>>) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    while let Ok(n) = err.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut kept = kept.lock().expect("stderr lock");
        kept.extend_from_slice(&buf[..n]);
        let excess = kept.len().saturating_sub(STDERR_KEEP_BYTES);
        kept.drain(..excess);
    }
}

/// A live session, as calls see it.
pub(crate) struct Session {
    pub(crate) peer: rmcp::Peer<RoleClient>,
    pub(crate) era: Era,
    pub(crate) in_flight: InFlight,
    /// Set as the connection's read side ends (end of stream or an error), before rmcp drops
    /// its table of pending requests and wakes their waiters in a hash map's order: from then
    /// on a call ignores rmcp's wake-ups and waits for the supervisor, which fails the calls in
    /// flight in request order (see `call::answer`). Never set over HTTP.
    pub(crate) ended: Arc<AtomicBool>,
    /// The `notifications/cancelled` of abandoned requests, being sent: the session is closed
    /// only after they are (bounded by [`CANCEL_FLUSH`]).
    pub(crate) cancels: tokio_util::task::TaskTracker,
}

/// How long a closing session waits for its cancellations to be sent.
pub(crate) const CANCEL_FLUSH: Duration = Duration::from_secs(1);

impl Session {
    pub(crate) fn new(peer: rmcp::Peer<RoleClient>, era: Era, ended: Arc<AtomicBool>) -> Session {
        Session { peer, era, in_flight: InFlight::default(), ended, cancels: tokio_util::task::TaskTracker::new() }
    }

    /// Sends `notifications/cancelled` for request `id`, tracked so a closing session waits for it.
    pub(crate) fn cancel(&self, id: rmcp::model::RequestId) {
        let peer = self.peer.clone();
        let param = rmcp::model::CancelledNotificationParam::new(Some(id), Some("abandoned by the client".to_owned()));
        self.cancels.spawn(async move {
            let _ = peer.notify_cancelled(param).await;
        });
    }

    /// Waits (bounded) until every cancellation spawned so far has been sent.
    pub(crate) async fn flush_cancels(&self) {
        self.cancels.close();
        let _ = tokio::time::timeout(CANCEL_FLUSH, self.cancels.wait()).await;
    }
}

/// A connection's read side that records when it ends.
struct Watched<R> {
    inner: R,
    ended: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Watched<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let (before, room) = (buf.filled().len(), buf.remaining());
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(result) = &polled
            && (result.is_err() || (room > 0 && buf.filled().len() == before))
        {
            self.ended.store(true, Ordering::Release);
        }
        polled
    }
}

/// One call in flight: whether the engine may replay it elsewhere, and how to fail it.
#[derive(Debug)]
struct Entry {
    replayable: bool,
    fail: oneshot::Sender<()>,
}

/// The calls in flight on one session, by sequence number; failed together, in order, when
/// the session dies.
#[derive(Debug)]
pub(crate) struct InFlight {
    next: AtomicU64,
    /// `None` once the session is dead.
    table: Mutex<Option<BTreeMap<u64, Entry>>>,
    /// Woken when the table empties.
    empty: tokio::sync::Notify,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            next: AtomicU64::new(0),
            table: Mutex::new(Some(BTreeMap::new())),
            empty: tokio::sync::Notify::new(),
        }
    }
}

impl InFlight {
    /// Registers a call; the receiver fires when the session fails it. `None` if already dead.
    pub(crate) fn register(&self, replayable: bool) -> Option<(u64, oneshot::Receiver<()>)> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let (fail, rx) = oneshot::channel();
        self.table.lock().expect("in-flight lock").as_mut()?.insert(seq, Entry { replayable, fail });
        Some((seq, rx))
    }

    /// A call finished (whatever its outcome).
    pub(crate) fn unregister(&self, seq: u64) {
        let mut table = self.table.lock().expect("in-flight lock");
        if let Some(t) = table.as_mut() {
            t.remove(&seq);
            if t.is_empty() {
                self.empty.notify_waiters();
            }
        }
    }

    /// Fails the calls the engine may replay elsewhere, in sequence order; the others stay.
    pub(crate) fn fail_replayable(&self) {
        let mut table = self.table.lock().expect("in-flight lock");
        let Some(t) = table.as_mut() else { return };
        let replayable: Vec<u64> = t.iter().filter(|(_, e)| e.replayable).map(|(seq, _)| *seq).collect();
        for seq in replayable {
            if let Some(e) = t.remove(&seq) {
                let _ = e.fail.send(());
            }
        }
        if t.is_empty() {
            self.empty.notify_waiters();
        }
    }

    /// Resolves once no call is in flight.
    pub(crate) async fn drained(&self) {
        loop {
            let notified = self.empty.notified();
            if self.table.lock().expect("in-flight lock").as_ref().is_none_or(BTreeMap::is_empty) {
                return;
            }
            notified.await;
        }
    }

    /// The session died: fail every call in flight, in sequence order.
    pub(crate) fn fail_all(&self) {
        let table = self.table.lock().expect("in-flight lock").take();
        for (_, e) in table.into_iter().flatten() {
            let _ = e.fail.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_session_fails_every_call_in_flight_and_refuses_new_ones() {
        let table = InFlight::default();
        let mut waiting: Vec<_> = (0..20).map(|i| table.register(i % 2 == 0).expect("alive")).collect();
        table.unregister(waiting.remove(3).0);
        table.fail_all();
        for (seq, mut rx) in waiting {
            assert_eq!(rx.try_recv(), Ok(()), "call {seq} was not failed");
        }
        assert!(table.register(true).is_none(), "a dead session takes no calls");
    }

    #[tokio::test]
    async fn a_recycled_session_fails_only_what_may_be_replayed_and_drains_the_rest() {
        let table = InFlight::default();
        let mut calls: Vec<_> = (0..6).map(|i| (i % 3 == 0, table.register(i % 3 == 0).expect("alive"))).collect();
        table.fail_replayable();
        for (replayable, (seq, rx)) in &mut calls {
            // A replayable call is failed (to be retried elsewhere); the others still wait.
            let failed = rx.try_recv() == Ok(());
            assert_eq!(failed, *replayable, "call {seq}");
        }
        let drained = table.drained();
        tokio::pin!(drained);
        assert!(futures::poll!(&mut drained).is_pending(), "calls that may not be replayed are in flight");
        for (_, (seq, _)) in calls.iter().filter(|(r, _)| !r) {
            table.unregister(*seq);
        }
        assert!(futures::poll!(&mut drained).is_ready(), "the last one out drains the session");
    }

    #[test]
    fn progress_that_comes_before_its_route_is_delivered_in_order_when_the_route_is_made() {
        let mut table = ProgressTable::default();
        let at = |p: f64| Progress { token: String::new(), progress: p, total: None, message: None };
        let key = |t: &str| (ServerId(1), t.to_owned());
        table.deliver(key("7"), at(0.0));
        table.deliver(key("8"), at(0.5));
        table.deliver(key("7"), at(0.25));
        let (tx, mut rx) = mpsc::unbounded_channel();
        table.route(key("7"), "caller".to_owned(), tx);
        table.deliver(key("7"), at(1.0));
        let seen: Vec<(String, f64)> =
            std::iter::from_fn(|| rx.try_recv().ok()).map(|p| (p.token, p.progress)).collect();
        let caller = |p: f64| ("caller".to_owned(), p);
        assert_eq!(seen, [caller(0.0), caller(0.25), caller(1.0)]);
        // Another token's early notification is still kept; none is kept beyond the bound.
        assert_eq!(table.early.len(), 1);
        for i in 0..200 {
            table.deliver(key(&format!("x{i}")), at(0.0));
        }
        assert_eq!(table.early.len(), EARLY_PROGRESS);
    }
}

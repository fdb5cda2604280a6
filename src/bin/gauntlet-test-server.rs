//! `gauntlet-test-server`: a small MCP server that misbehaves on request.
//!
//! It serves a few tools over stdio (default), Streamable HTTP (`--http ADDR`) or raw TCP
//! (`--tcp ADDR`), in the legacy era (`initialize`), the modern one (`server/discover`), or
//! both, and can be told to be slow, to fail, to stall, to write garbage, to list duplicate
//! tools or to answer with huge payloads. Gauntlet's integration tests drive it; users can try
//! `gauntlet probe` against it.
//!
//! Tools (annotations in brackets):
//! - `echo {text}` [read-only, idempotent]: returns `text`.
//! - `add {a, b}` [read-only]: returns `a + b`.
//! - `whoami` [read-only, idempotent]: returns the server's `--name`.
//! - `write {key, value}` [none: not safe to replay]: counts writes, returns the count.
//! - `slow {ms}` [read-only]: answers after `ms` milliseconds, sending progress at the start
//!   and the end when the request carries a progress token; counts a cancellation.
//! - `huge {bytes}` [read-only]: returns that many bytes of text.
//! - `garbage` [read-only]: writes a line that is not JSON-RPC to the stream, then answers.
//! - `fail` [read-only]: returns a tool result with `isError: true`.
//! - `stats` [read-only]: returns `{"calls": n, "cancelled": n, "writes": n}`.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, DiscoverResult, ErrorCode, ErrorData,
    Implementation, InitializeResult, JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProtocolVersion, ServerCapabilities, Tool, ToolAnnotations,
};
use rmcp::service::{MaybeSendFuture, RequestContext, RoleServer};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::io::AsyncWrite;

/// The largest `huge` payload, so a typo cannot exhaust memory.
const MAX_HUGE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Era {
    /// Only `initialize` (discover is "method not found").
    Legacy,
    /// Only `server/discover` (2026-07-28).
    Modern,
    /// Both.
    Both,
}

/// A small MCP server that misbehaves on request.
#[derive(Clone, Debug, Parser)]
#[command(name = "gauntlet-test-server", version)]
struct Args {
    /// The name it reports, and `whoami` returns.
    #[arg(long, default_value = "test-server")]
    name: String,
    /// Serve Streamable HTTP on this address (e.g. 127.0.0.1:0) instead of stdio; prints
    /// `listening http://ADDR/mcp` on stdout.
    #[arg(long, conflicts_with = "tcp")]
    http: Option<String>,
    /// With --http: serve HTTPS with this PEM certificate chain (and --tls-key); prints
    /// `listening https://ADDR/mcp`.
    #[arg(long, requires_all = ["http", "tls_key"])]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve newline-delimited JSON-RPC on this TCP address instead of stdio; prints
    /// `listening tcp ADDR` on stdout.
    #[arg(long)]
    tcp: Option<String>,
    /// Which protocol era to speak.
    #[arg(long, value_enum, default_value_t = Era::Both)]
    era: Era,
    /// Only offer these tools (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tools: Vec<String>,
    /// List every tool twice.
    #[arg(long)]
    duplicate_tools: bool,
    /// Tools per `tools/list` page (0: one page).
    #[arg(long, default_value_t = 0)]
    page_size: usize,
    /// Every tool call waits this long first (a call cancelled meanwhile stops, counted in
    /// `stats`).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Every n-th tool call fails with a JSON-RPC internal error (0: never).
    #[arg(long, default_value_t = 0)]
    fail_every: u64,
    /// After this many tool calls, stop answering for --stall-ms (0: never).
    #[arg(long, default_value_t = 0)]
    stall_after: u64,
    /// How long a stall lasts; calls made during it answer only after it.
    #[arg(long, default_value_t = 3_600_000)]
    stall_ms: u64,
    /// Exit the process after this many tool calls (0: never).
    #[arg(long, default_value_t = 0)]
    exit_after: u64,
}

#[derive(Clone)]
struct TestServer {
    args: Arc<Args>,
    calls: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
    cancelled: Arc<AtomicU64>,
    stall_until: Arc<Mutex<Option<tokio::time::Instant>>>,
    garbage: Arc<AtomicBool>,
    /// Connections accepted (HTTP and TCP modes).
    connections: Arc<AtomicU64>,
}

fn schema(properties: &Value) -> Arc<JsonObject> {
    let mut map = JsonObject::new();
    map.insert("type".to_owned(), json!("object"));
    map.insert("properties".to_owned(), properties.clone());
    Arc::new(map)
}

fn all_tools() -> Vec<Tool> {
    let ro = || ToolAnnotations::new().read_only(true);
    vec![
        Tool::new("echo", "Returns its text.", schema(&json!({"text": {"type": "string"}})))
            .with_annotations(ro().idempotent(true)),
        Tool::new("add", "Adds two numbers.", schema(&json!({"a": {"type": "number"}, "b": {"type": "number"}})))
            .with_annotations(ro()),
        Tool::new("whoami", "Returns the server's name.", schema(&json!({}))).with_annotations(ro().idempotent(true)),
        Tool::new("write", "Counts writes (not safe to replay).", schema(&json!({"key": {"type": "string"}}))),
        Tool::new("slow", "Answers after `ms` milliseconds.", schema(&json!({"ms": {"type": "integer"}})))
            .with_annotations(ro()),
        Tool::new("huge", "Returns `bytes` bytes of text.", schema(&json!({"bytes": {"type": "integer"}})))
            .with_annotations(ro()),
        Tool::new("garbage", "Writes a non-JSON line, then answers.", schema(&json!({}))).with_annotations(ro()),
        Tool::new("fail", "Returns a tool error (isError).", schema(&json!({}))).with_annotations(ro()),
        Tool::new("stats", "Counts calls, cancellations and writes.", schema(&json!({}))).with_annotations(ro()),
    ]
}

impl TestServer {
    fn tools(&self) -> Vec<Tool> {
        let mut tools: Vec<Tool> = all_tools()
            .into_iter()
            .filter(|t| self.args.tools.is_empty() || self.args.tools.iter().any(|n| n == &t.name))
            .collect();
        if self.args.duplicate_tools {
            let copy = tools.clone();
            tools.extend(copy);
        }
        tools
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.args.exit_after > 0 && n > self.args.exit_after {
            std::process::exit(0);
        }
        if self.args.stall_after > 0 && n == self.args.stall_after + 1 {
            *self.stall_until.lock().expect("stall lock") =
                Some(tokio::time::Instant::now() + Duration::from_millis(self.args.stall_ms));
        }
        let stall = *self.stall_until.lock().expect("stall lock");
        if let Some(until) = stall {
            tokio::time::sleep_until(until).await;
        }
        if self.args.delay_ms > 0 {
            tokio::select! {
                biased;
                _ = context.ct.cancelled() => {
                    self.cancelled.fetch_add(1, Ordering::SeqCst);
                    return Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "cancelled", None));
                }
                _ = tokio::time::sleep(Duration::from_millis(self.args.delay_ms)) => {}
            }
        }
        if self.args.fail_every > 0 && n.is_multiple_of(self.args.fail_every) {
            return Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "injected failure", None));
        }
        let args = request.arguments.unwrap_or_default();
        let text = match request.name.as_ref() {
            "echo" => args.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
            "add" => {
                let num = |k: &str| args.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                (num("a") + num("b")).to_string()
            }
            "whoami" => self.args.name.clone(),
            "write" => (self.writes.fetch_add(1, Ordering::SeqCst) + 1).to_string(),
            "slow" => {
                let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(100).min(3_600_000);
                let token = context.meta.get_progress_token();
                let progress = |p: f64| {
                    let peer = context.peer.clone();
                    let token = token.clone();
                    async move {
                        if let Some(token) = token {
                            let mut param = ProgressNotificationParam::new(token, p);
                            param.total = Some(1.0);
                            let _ = peer.notify_progress(param).await;
                        }
                    }
                };
                progress(0.0).await;
                tokio::select! {
                    biased;
                    _ = context.ct.cancelled() => {
                        self.cancelled.fetch_add(1, Ordering::SeqCst);
                        return Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "cancelled", None));
                    }
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                }
                progress(1.0).await;
                format!("slept {ms} ms")
            }
            "stats" => json!({
                "calls": self.calls.load(Ordering::SeqCst),
                "cancelled": self.cancelled.load(Ordering::SeqCst),
                "writes": self.writes.load(Ordering::SeqCst),
                "connections": self.connections.load(Ordering::SeqCst),
            })
            .to_string(),
            "huge" => {
                let bytes = args.get("bytes").and_then(Value::as_u64).unwrap_or(1 << 20).min(MAX_HUGE_BYTES);
                "x".repeat(bytes as usize)
            }
            "garbage" => {
                self.garbage.store(true, Ordering::SeqCst);
                "garbage sent".to_owned()
            }
            "fail" => return Ok(CallToolResult::error(vec![ContentBlock::text("the tool says no")])),
            other => {
                return Err(ErrorData::new(ErrorCode::INVALID_PARAMS, format!("unknown tool {other:?}"), None));
            }
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(self.args.name.clone(), env!("CARGO_PKG_VERSION")))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        match self.args.era {
            Era::Modern => Cow::Borrowed(&[ProtocolVersion::V_2026_07_28]),
            // A legacy server predates `server/discover`: it answers it "method not found"
            // (below), as older SDKs do, rather than "unsupported version".
            Era::Legacy | Era::Both => Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS),
        }
    }

    fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, ErrorData>> + MaybeSendFuture + '_ {
        let result = if self.args.era == Era::Legacy {
            Err(ErrorData::new(ErrorCode::METHOD_NOT_FOUND, "Method not found", None))
        } else {
            Ok(DiscoverResult::from_server_info(self.supported_protocol_versions().into_owned(), self.get_info()))
        };
        std::future::ready(result)
    }

    fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, ErrorData>> + MaybeSendFuture + '_ {
        let tools = self.tools();
        let start = request.and_then(|r| r.cursor).and_then(|c| c.parse::<usize>().ok()).unwrap_or(0).min(tools.len());
        let size = if self.args.page_size == 0 { tools.len() } else { self.args.page_size };
        let end = (start + size).min(tools.len());
        let result = ListToolsResult {
            tools: tools[start..end].to_vec(),
            next_cursor: (end < tools.len()).then(|| end.to_string()),
            ..Default::default()
        };
        std::future::ready(Ok(result))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(request, context).await.map(CallToolResponse::Complete)
    }
}

/// Stdout that can be told to write one line of garbage before its next message.
struct GarbledStdout {
    inner: tokio::io::Stdout,
    garbage: Arc<AtomicBool>,
    pending: Vec<u8>,
}

impl AsyncWrite for GarbledStdout {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.garbage.swap(false, Ordering::SeqCst) {
            self.pending.extend_from_slice(b"}{ this line is not JSON-RPC\n");
        }
        while !self.pending.is_empty() {
            let this = &mut *self;
            match Pin::new(&mut this.inner).poll_write(cx, &this.pending) {
                Poll::Ready(Ok(n)) => {
                    this.pending.drain(..n);
                }
                other => return other,
            }
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = TestServer {
        args: Arc::new(args.clone()),
        calls: Arc::default(),
        writes: Arc::default(),
        cancelled: Arc::default(),
        stall_until: Arc::default(),
        garbage: Arc::default(),
        connections: Arc::default(),
    };
    if let Some(addr) = &args.http {
        serve_http(server, addr).await
    } else if let Some(addr) = &args.tcp {
        serve_tcp(server, addr).await
    } else {
        let out = GarbledStdout { inner: tokio::io::stdout(), garbage: server.garbage.clone(), pending: Vec::new() };
        let running = server.serve((tokio::io::stdin(), out)).await.context("MCP handshake on stdio")?;
        running.waiting().await.context("serving stdio")?;
        Ok(())
    }
}

/// Tells whoever started the server where it listens (stdout is free when not serving stdio).
fn announce(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

async fn serve_http(server: TestServer, addr: &str) -> anyhow::Result<()> {
    let args_tls = (server.args.tls_cert.clone(), server.args.tls_key.clone());
    let connections = server.connections.clone();
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    let modern_only = server.args.era == Era::Modern;
    let service: StreamableHttpService<TestServer, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(server.clone()),
        Default::default(),
        StreamableHttpServerConfig::default().with_json_response(true).with_legacy_session_mode(!modern_only),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let acceptor = match (&args_tls.0, &args_tls.1) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    announce(&format!("listening {scheme}://{local}/mcp"))?;
    // Each connection is served by hyper directly, so they can be counted (`stats`).
    loop {
        let (tcp, _) = listener.accept().await?;
        connections.fetch_add(1, Ordering::SeqCst);
        // Without it a response written in two parts waits for the client's delayed ACK (40 ms).
        tcp.set_nodelay(true)?;
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(router);
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match acceptor {
                // A client that refuses the certificate ends its handshake here.
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => http.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await,
                    Err(_) => return,
                },
                None => http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await,
            };
        });
    }
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn serve_tcp(server: TestServer, addr: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    announce(&format!("listening tcp {}", listener.local_addr()?))?;
    loop {
        let (stream, _) = listener.accept().await?;
        server.connections.fetch_add(1, Ordering::SeqCst);
        let server = server.clone();
        tokio::spawn(async move {
            if let Ok(running) = server.serve(stream).await {
                let _ = running.waiting().await;
            }
        });
    }
}

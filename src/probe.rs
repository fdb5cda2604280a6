//! `gauntlet probe`: the real client against real servers.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use gauntlet_client::config::Config;
use gauntlet_client::{CallError, CallOptions, LinkState, MultiServerClient, Progress};
use gauntlet_core::balance::Strategy;
use gauntlet_core::latency;
use gauntlet_core::policy::{Event, Period};
use serde_json::Value;

/// The most calls one probe drives.
const MAX_CALLS: u32 = 1_000_000;
/// The most calls in flight.
const MAX_CONCURRENCY: u32 = 1_024;

/// Checked settings of `gauntlet probe`.
#[derive(Debug)]
pub(crate) struct Settings {
    config: Config,
    calls: u32,
    concurrency: u32,
    tool: Option<String>,
    args: serde_json::Map<String, Value>,
    ready_timeout: Duration,
    metrics_addr: Option<std::net::SocketAddr>,
    progress: bool,
}

impl TryFrom<crate::args::ProbeArgs> for Settings {
    type Error = anyhow::Error;

    fn try_from(raw: crate::args::ProbeArgs) -> anyhow::Result<Settings> {
        let path = raw.config.display().to_string();
        let text = std::fs::read_to_string(&raw.config).with_context(|| format!("reading {path}"))?;
        let mut config = Config::parse(&text, &|var| std::env::var(var).ok()).with_context(|| path.to_string())?;
        let dir = raw.config.parent().unwrap_or_else(|| std::path::Path::new("."));
        config.rebase(dir).with_context(|| path.to_string())?;
        crate::redact_logs(&config.redactor());
        if let Some(b) = &raw.balancer {
            config.policy.balancer = b.parse::<Strategy>()?;
        }
        if let Some(seed) = raw.seed {
            config.policy.seed = seed;
        }
        if let Some(text) = &raw.timeout {
            let timeout = text.parse::<Period>().map_err(|m| anyhow::anyhow!("--timeout `{text}`: {m}"))?.get();
            for server in &mut config.servers {
                server.call_timeout = timeout;
            }
        }
        if let Some(text) = &raw.deadline {
            config.policy.deadline = text.parse::<Period>().map_err(|m| anyhow::anyhow!("--deadline `{text}`: {m}"))?;
            config.policy.check().map_err(|e| anyhow::anyhow!("--deadline `{text}`: {}", e.message))?;
        }
        if raw.calls > MAX_CALLS {
            bail!("--calls must be at most {MAX_CALLS}");
        }
        if !(1..=MAX_CONCURRENCY).contains(&raw.concurrency) {
            bail!("--concurrency must be in 1..={MAX_CONCURRENCY}");
        }
        let args = match serde_json::from_str::<Value>(&raw.args) {
            Ok(Value::Object(map)) => map,
            Ok(_) => bail!("--args must be a JSON object"),
            Err(e) => bail!("--args is not JSON: {e}"),
        };
        let ready_timeout = humantime::parse_duration(&raw.ready_timeout)
            .with_context(|| format!("--ready-timeout `{}`", raw.ready_timeout))?;
        Ok(Settings {
            config,
            calls: raw.calls,
            concurrency: raw.concurrency,
            tool: raw.tool,
            args,
            ready_timeout,
            metrics_addr: raw.metrics_addr,
            progress: raw.progress,
        })
    }
}

/// What went wrong in a probe that ran: exit code 1.
#[derive(Debug)]
pub(crate) struct ProbeFailed(pub(crate) String);

impl std::fmt::Display for ProbeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeFailed {}

pub(crate) fn run(settings: Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(probe(settings, out))
}

async fn probe(settings: Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let balancer = settings.config.policy.balancer;
    if !settings.config.ignored.is_empty() {
        writeln!(out, "ignored (other clients' settings): {}", settings.config.ignored.join(", "))?;
    }
    // What changed during the run, from the engine's events.
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let observer: gauntlet_client::Observer = {
        let timeline = timeline.clone();
        Arc::new(move |e: &Event| timeline.lock().expect("timeline lock").record(e))
    };
    let client = Arc::new(MultiServerClient::start_observed(
        settings.config,
        gauntlet_client::ConfiguredTransports::default(),
        Some(observer),
    ));
    let _metrics = match settings.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, client.clone(), out).await?),
        None => None,
    };
    // Calls to a named tool start once a replica of it is ready, not after the slowest
    // server's handshake; otherwise every server settles first (the default tool is the
    // catalog's first, which depends on who is there).
    match (&settings.tool, settings.calls) {
        (Some(tool), 1..) => client.wait_for_tool(tool, settings.ready_timeout).await,
        _ => client.wait_ready(settings.ready_timeout).await,
    }

    let servers = client.servers();
    server_table(out, "servers:", &servers)?;
    let catalog = client.catalog();
    catalog_table(out, "catalog", &catalog, &client)?;
    let down = servers.iter().filter(|s| !matches!(s.link, LinkState::Ready)).count();
    if settings.calls == 0 {
        return if down > 0 { Err(ProbeFailed(format!("{down} server(s) not connected")).into()) } else { Ok(()) };
    }
    let Some(tool) = settings.tool.clone().or_else(|| catalog.first().map(|e| e.exposed.clone())) else {
        return Err(ProbeFailed("no tool to call: the catalog is empty".to_owned()).into());
    };
    if !catalog.iter().any(|e| e.exposed == tool) {
        // With servers down the tool may be theirs: that is a failure of the servers, not of
        // the input.
        if down > 0 {
            return Err(ProbeFailed(format!(
                "--tool `{tool}` is not in the catalog, and {down} server(s) that might offer it are not connected"
            ))
            .into());
        }
        bail!("--tool `{tool}` is not in the catalog");
    }

    writeln!(out, "calls: {} x {tool} (concurrency {}, balancer {balancer})", settings.calls, settings.concurrency)?;
    // The wall clock, for the calls per second of real servers (the probe is I/O, not a decision).
    let started = std::time::Instant::now();
    timeline.lock().expect("timeline lock").since = Some(started);
    let next = Arc::new(AtomicU32::new(0));
    let tally = Arc::new(Mutex::new(Tally::empty()));
    let stop = Arc::new(AtomicBool::new(false));
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..settings.concurrency.min(settings.calls) {
        let (client, next, args, tool) = (client.clone(), next.clone(), settings.args.clone(), tool.clone());
        let (tally, stop) = (tally.clone(), stop.clone());
        let progress = settings.progress.then(|| progress_tx.clone());
        let total = settings.calls;
        workers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let options = CallOptions {
                    progress: progress.as_ref().map(|tx| (format!("call-{n}"), tx.clone())),
                    ..CallOptions::default()
                };
                let started = tokio::time::Instant::now();
                let result = client.call_tool_with(&tool, args.clone(), options).await;
                let mut t = tally.lock().expect("tally lock");
                t.done += 1;
                match result {
                    Ok(report) => {
                        latency::record(&mut t.latencies, started.elapsed());
                        t.tool_errors += u32::from(report.result.is_error == Some(true));
                    }
                    Err(e) => t.failures.push(e),
                }
            }
        });
    }
    drop(progress_tx);
    // A progress line on a terminal (standard error), never in piped output.
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(u64::from(settings.calls))
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{pos}/{len} calls {per_sec} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    // SIGINT or SIGTERM: no new call starts; those in flight get a grace period, then are
    // cancelled (dropping a call sends `notifications/cancelled`); the summary is printed.
    let mut signal = std::pin::pin!(interrupted());
    let mut grace: Option<tokio::time::Instant> = None;
    let mut cancelled = 0u32;
    let mut progress_open = settings.progress;
    loop {
        tokio::select! {
            biased;
            () = &mut signal, if grace.is_none() => {
                stop.store(true, Ordering::Relaxed);
                grace = Some(tokio::time::Instant::now() + GRACE);
                bar.suspend(|| writeln!(out, "interrupted: no new calls; waiting up to {GRACE:?} for those in flight"))?;
            }
            p = progress_rx.recv(), if progress_open => match p {
                Some(p) => bar.suspend(|| progress_line(out, &p))?,
                None => progress_open = false,
            },
            joined = workers.join_next() => match joined {
                Some(r) => r.context("a probe worker panicked")?,
                None => break,
            },
            () = sleep_until_some(grace) => {
                cancelled = u32::try_from(workers.len()).unwrap_or(u32::MAX);
                workers.shutdown().await;
                break;
            }
            _ = ticker.tick(), if !bar.is_hidden() => {
                let (done, failed) = {
                    let t = tally.lock().expect("tally lock");
                    (t.done, t.failures.len())
                };
                bar.set_position(u64::from(done));
                bar.set_message(format!("{failed} failed; {}", shares(&client.server_latency(0.5))));
            }
        }
    }
    bar.finish_and_clear();
    // Notifications that arrived with the last answers.
    while let Ok(p) = progress_rx.try_recv() {
        progress_line(out, &p)?;
    }
    let Tally { latencies: all, failures, tool_errors, done } =
        std::mem::replace(&mut *tally.lock().expect("tally lock"), Tally::empty());
    let elapsed = started.elapsed();
    writeln!(out, "  {:<20} {:>8} {:>8} {:>9} {:>9}", "server", "attempts", "answered", "p50", "p99")?;
    let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.2}ms", d.as_secs_f64() * 1e3));
    let p50 = client.server_latency(0.5);
    let p99 = client.server_latency(0.99);
    for ((name, attempts, answered, a), (_, _, _, b)) in p50.iter().zip(&p99) {
        writeln!(out, "  {name:<20} {attempts:>8} {answered:>8} {:>9} {:>9}", ms(*a), ms(*b))?;
    }
    // A tool error is an answer, but not a success: counted apart.
    let ok = u64::from(done).saturating_sub(failures.len() as u64 + u64::from(tool_errors));
    let q = |x| latency::quantile(&all, x);
    writeln!(
        out,
        "overall: {ok}/{} ok ({:.2}%), {tool_errors} tool errors, {} failed in {:.2}s ({:.0} calls/s); \
         latency p50 {} p90 {} p99 {} max {}",
        settings.calls,
        100.0 * ok as f64 / f64::from(settings.calls),
        failures.len(),
        elapsed.as_secs_f64(),
        f64::from(done) / elapsed.as_secs_f64().max(1e-9),
        ms(q(0.5)),
        ms(q(0.9)),
        ms(q(0.99)),
        ms((!all.is_empty()).then(|| Duration::from_micros(all.max())))
    )?;
    // The first few distinct failures, so the reason is in the log.
    let mut shown = std::collections::BTreeSet::new();
    for f in &failures {
        if shown.insert(f.to_string()) && shown.len() <= 5 {
            writeln!(out, "  failed: {f}")?;
        }
    }
    // The servers first: their states take the engine's lock, under which the engine's
    // observer takes the timeline's, so the timeline's is never held while waiting for it.
    let after = client.servers();
    timeline.lock().expect("timeline lock").print(out, &after)?;
    // How the servers stand after the run: a replica lost during it shows here, and the catalog
    // if it changed (servers that joined after the calls began, tools withdrawn or added).
    server_table(out, "servers after the run:", &after)?;
    let catalog_after = client.catalog();
    let names =
        |c: &[gauntlet_client::ToolEntry]| c.iter().map(|e| (e.exposed.clone(), e.servers.clone())).collect::<Vec<_>>();
    if names(&catalog_after) != names(&catalog) {
        catalog_table(out, "catalog after the run", &catalog_after, &client)?;
    }
    match Arc::try_unwrap(client) {
        Ok(client) => client.shutdown().await,
        Err(client) => drop(client),
    }
    let mut wrong = Vec::new();
    if grace.is_some() {
        wrong.push(format!(
            "interrupted after {done} of {} calls ({cancelled} in flight cancelled after the grace period)",
            settings.calls
        ));
    }
    if !failures.is_empty() {
        wrong.push(format!("{} of {} calls failed", failures.len(), settings.calls));
    }
    if tool_errors > 0 {
        wrong.push(format!("{tool_errors} of {} calls answered with a tool error", settings.calls));
    }
    // A server still in its handshake (the calls started once a replica was ready) is shown,
    // not failed; one whose link went down is a failure.
    let down_after: Vec<&str> =
        after.iter().filter(|s| matches!(s.link, LinkState::Down { .. })).map(|s| s.name.as_str()).collect();
    if !down_after.is_empty() {
        wrong.push(format!("not connected after the run: {}", down_after.join(", ")));
    }
    if !wrong.is_empty() {
        return Err(ProbeFailed(wrong.join("; ")).into());
    }
    Ok(())
}

/// The most timeline entries kept; later ones are counted.
const MAX_TIMELINE: usize = 1_000;
/// The most timeline entries printed.
const SHOWN_TIMELINE: usize = 40;

/// What changed during the run, from the engine's events: links, breakers, ejections as they
/// happened, failovers counted by pair (attempts are in the server table).
#[derive(Debug, Default)]
struct Timeline {
    /// When the calls began; events before are the start-up, not the run.
    since: Option<std::time::Instant>,
    entries: Vec<(Duration, Event)>,
    dropped: u64,
    failovers: std::collections::BTreeMap<(u32, u32), (u64, Duration)>,
}

impl Timeline {
    fn record(&mut self, event: &Event) {
        let Some(since) = self.since else { return };
        let at = since.elapsed();
        match *event {
            Event::Sent { .. } => {}
            Event::Failover { from, to } => {
                self.failovers.entry((from.0, to.0)).or_insert((0, at)).0 += 1;
            }
            _ if self.entries.len() < MAX_TIMELINE => self.entries.push((at, *event)),
            _ => self.dropped += 1,
        }
    }

    fn print(&self, out: &mut impl Write, servers: &[gauntlet_client::ServerStatus]) -> anyhow::Result<()> {
        let name = |id: gauntlet_core::ServerId| servers.get(id.index()).map_or("?", |s| s.name.as_str());
        let at = |d: &Duration| format!("+{:.1}ms", d.as_secs_f64() * 1e3);
        if self.entries.is_empty() && self.failovers.is_empty() {
            writeln!(out, "timeline: no server changed during the run")?;
            return Ok(());
        }
        writeln!(out, "timeline (since the calls began):")?;
        for (when, event) in self.entries.iter().take(SHOWN_TIMELINE) {
            let (server, what) = match *event {
                Event::Connected { server } => (server, "connected".to_owned()),
                Event::Disconnected { server } => (server, "lost its session".to_owned()),
                Event::Breaker { server, from, to } => (server, format!("breaker {from} -> {to}")),
                Event::Ejected { server, ejected: true } => (server, "ejected as an outlier".to_owned()),
                Event::Ejected { server, ejected: false } => (server, "back from ejection".to_owned()),
                Event::Sent { .. } | Event::Failover { .. } => continue,
            };
            writeln!(out, "  {:>10}  {:<20} {what}", at(when), name(server))?;
        }
        let more = (self.entries.len().saturating_sub(SHOWN_TIMELINE) as u64).saturating_add(self.dropped);
        if more > 0 {
            writeln!(out, "  … and {more} more")?;
        }
        for ((from, to), (count, first)) in &self.failovers {
            let (from, to) = (gauntlet_core::ServerId(*from), gauntlet_core::ServerId(*to));
            writeln!(out, "  failovers {} -> {}: {count} (first at {})", name(from), name(to), at(first))?;
        }
        Ok(())
    }
}

/// The most characters of a progress message printed.
const PROGRESS_MESSAGE_CHARS: usize = 200;

/// One progress notification, as `--progress` prints it. The message is the server's (not
/// trusted): control characters are dropped, so it cannot drive the terminal, and it is cut at
/// [`PROGRESS_MESSAGE_CHARS`].
fn progress_line(out: &mut impl Write, p: &Progress) -> std::io::Result<()> {
    let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
    let message = p
        .message
        .as_deref()
        .map(|m| {
            let shown: String = m.chars().filter(|c| !c.is_control()).take(PROGRESS_MESSAGE_CHARS).collect();
            format!(" {shown}")
        })
        .unwrap_or_default();
    writeln!(out, "  progress {}: {}{total}{message}", p.token, p.progress)
}

/// Each server's share of the attempts so far, for the progress line.
fn shares(servers: &[(String, u64, u64, Option<Duration>)]) -> String {
    let total: u64 = servers.iter().map(|s| s.1).sum();
    servers
        .iter()
        .map(|(name, attempts, _, _)| format!("{name} {:.0}%", 100.0 * *attempts as f64 / total.max(1) as f64))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How long calls in flight may finish after SIGINT or SIGTERM before they are cancelled.
const GRACE: Duration = Duration::from_secs(2);

/// What the probe's workers counted.
struct Tally {
    latencies: hdrhistogram::Histogram<u64>,
    failures: Vec<CallError>,
    tool_errors: u32,
    done: u32,
}

impl Tally {
    fn empty() -> Tally {
        Tally { latencies: latency::histogram(3), failures: Vec::new(), tool_errors: 0, done: 0 }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM; never if neither can be listened for.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        biased;
        r = tokio::signal::ctrl_c() => {
            if r.is_err() {
                std::future::pending::<()>().await;
            }
        }
        () = terminated => {}
    }
}

/// Sleeps until `at`; forever when there is none.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Serves `client`'s Prometheus text at `http://addr/metrics` until the returned guard drops.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    client: Arc<MultiServerClient>,
    out: &mut impl Write,
) -> anyhow::Result<AbortOnDrop> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("--metrics-addr {addr}"))?;
    let local = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let client = client.clone();
            async move { ([("content-type", "text/plain; version=0.0.4")], client.prometheus()) }
        }),
    );
    writeln!(out, "metrics: http://{local}/metrics")?;
    Ok(AbortOnDrop(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })))
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The federated catalog: each exposed tool, the servers behind it, and the tools left out.
fn catalog_table(
    out: &mut impl Write,
    title: &str,
    catalog: &[gauntlet_client::ToolEntry],
    client: &MultiServerClient,
) -> anyhow::Result<()> {
    writeln!(out, "{title} ({} tools):", catalog.len())?;
    for e in catalog {
        let replay = if e.replayable { "  [replayable]" } else { "" };
        writeln!(out, "  {:<40} -> {}{replay}", e.exposed, e.servers.join(", "))?;
    }
    for skipped in client.skipped_tools() {
        writeln!(out, "  skipped: {skipped}")?;
    }
    Ok(())
}

/// The servers: link, era, health, breaker, connections made and tools; why a server is down.
fn server_table(out: &mut impl Write, title: &str, servers: &[gauntlet_client::ServerStatus]) -> anyhow::Result<()> {
    writeln!(out, "{title}")?;
    writeln!(
        out,
        "  {:<20} {:<6} {:<8} {:<7} {:<8} {:<9} {:>8} {:>5}",
        "name", "via", "link", "era", "health", "breaker", "connects", "tools"
    )?;
    for s in servers {
        let link = match &s.link {
            LinkState::Ready => "ready".to_owned(),
            LinkState::Connecting => "connecting".to_owned(),
            LinkState::Down { .. } => "down".to_owned(),
        };
        let era = s.era.map_or("-", |e| e.name());
        let health = if s.healthy { "up" } else { "down" };
        writeln!(
            out,
            "  {:<20} {:<6} {:<8} {:<7} {:<8} {:<9} {:>8} {:>5}",
            s.name, s.transport, link, era, health, s.breaker, s.connects, s.tools
        )?;
        if let LinkState::Down { reason } = &s.link {
            writeln!(out, "    reason: {reason}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_message_cannot_drive_the_terminal_or_flood_it() {
        let p = Progress {
            token: "call-3".to_owned(),
            progress: 0.5,
            total: Some(1.0),
            message: Some(format!("\u{1b}[2J\u{1b}]0;owned\u{7}half\r\n{}", "x".repeat(10_000))),
        };
        let mut out = Vec::new();
        progress_line(&mut out, &p).expect("writes");
        let line = String::from_utf8(out).expect("text");
        let body = line.strip_suffix('\n').expect("one line");
        assert!(!body.chars().any(char::is_control), "{body:?}");
        assert!(body.starts_with("  progress call-3: 0.5/1 [2J]0;ownedhalfxxx"), "{body:?}");
        assert_eq!(body.chars().filter(|c| *c == 'x').count(), PROGRESS_MESSAGE_CHARS - "[2J]0;ownedhalf".len());
    }
}

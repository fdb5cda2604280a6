//! The supervisor of one upstream: its connection's life, as a task.
//!
//! It connects (bounded by the connect timeout), lists every page of tools (bounded by the call
//! timeout), publishes the session, and then watches it: the session ends when the transport
//! closes, when active health checks fail (the engine's health record decides), or when calls
//! keep timing out (a partitioned connection stays wedged even after the network heals, so a
//! slow session is recycled, not trusted). Then it fails the calls in flight in order (see
//! `session`), waits a backoff from its seeded stream and connects again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gauntlet_core::SeededRng;
use rmcp::model::{ClientRequest, PaginatedRequestParams, PingRequest, RequestMetaObject, Tool};
use tokio_util::sync::CancellationToken;

use crate::session::{self, Era, Handler, Session};
use crate::shared::{HandlerToken, Shared};
use crate::upstream::{LinkState, MAX_PAGES, MAX_TOOLS, Upstream};

/// Lists every page of tools, within the limits.
async fn list_tools(peer: &rmcp::Peer<rmcp::RoleClient>) -> Result<Vec<Tool>, String> {
    let mut tools = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let page = peer
            .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor)))
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        tools.extend(page.tools);
        if tools.len() >= MAX_TOOLS {
            tools.truncate(MAX_TOOLS);
            break;
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    Ok(tools)
}

/// An active health check: `ping` on a legacy session, `server/discover` on a modern one.
async fn check(session: &Session) -> bool {
    match session.era {
        Era::Legacy => session.peer.send_request(ClientRequest::PingRequest(PingRequest::default())).await.is_ok(),
        Era::Modern => session.peer.discover(RequestMetaObject::default()).await.is_ok(),
    }
}

/// Runs `up`'s connection until `shutdown`.
pub(crate) async fn supervise(shared: Arc<Shared>, index: usize, mut rng: SeededRng, shutdown: CancellationToken) {
    let up = &shared.upstreams[index];
    let backoff = shared.config.policy.reconnect_backoff();
    let mut delay = Duration::ZERO;
    let mut failures = 0u32;
    loop {
        up.status.lock().expect("status lock").link = LinkState::Connecting;
        let handler = Handler {
            server: up.id,
            notices: shared.notices.clone(),
            progress: shared.progress.clone(),
            ended: Arc::default(),
        };
        let connect = shared.connector.connect(&up.config, HandlerToken(handler));
        let connected = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(up.config.connect_timeout, connect) => r,
        };
        let reason = match connected {
            Err(_) => format!("no MCP handshake within {:?}", up.config.connect_timeout),
            Ok(Err(e)) => e.to_string(),
            Ok(Ok(c)) => {
                failures = 0;
                delay = Duration::ZERO;
                let reason = serve(&shared, up, c, &shutdown).await;
                if shutdown.is_cancelled() {
                    return;
                }
                reason
            }
        };
        let reason = up.config.redact.scrub(&reason);
        tracing::warn!(server = %up.config.name, %reason, "upstream down");
        up.set_link(LinkState::Down { reason });
        shared.on_link_change(up.id);
        failures += 1;
        delay = backoff.delay(failures.saturating_sub(1), delay, &mut rng);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Serves one connected session until it ends; returns why it ended.
async fn serve(
    shared: &Arc<Shared>,
    up: &Upstream,
    connected: session::Connected,
    shutdown: &CancellationToken,
) -> String {
    let session::Connected { running, child, stderr } = connected;
    let _child = child; // killed when this function returns
    *up.stderr.lock().expect("stderr lock") = stderr;
    let peer = running.peer().clone();
    let era = peer.peer_info().map_or(Era::Legacy, |info| Era::of(&info.protocol_version));
    let list_changed = peer
        .peer_info()
        .and_then(|info| info.capabilities.tools.as_ref().and_then(|t| t.list_changed))
        .unwrap_or(false);
    let tools = tokio::time::timeout(up.config.call_timeout, list_tools(&peer)).await;
    let tools = match tools {
        Ok(Ok(tools)) => tools,
        Ok(Err(e)) => return e,
        Err(_) => return format!("tools/list did not answer within {:?}", up.config.call_timeout),
    };
    let session = Arc::new(Session::new(peer.clone(), era, running.service().ended.clone()));
    *up.tools.lock().expect("tools lock") = Some(tools);
    *up.session.write().expect("session lock") = Some(session.clone());
    {
        let mut s = up.status.lock().expect("status lock");
        s.link = LinkState::Ready;
        s.era = Some(era);
        s.connects += 1;
        s.list_changed = list_changed;
        s.settled = true;
    }
    up.timeouts.store(0, Ordering::Relaxed);
    shared.on_link_change(up.id);
    shared.on_tools_change();

    let token = running.cancellation_token();
    let mut waiting = std::pin::pin!(running.waiting());
    let reason = loop {
        let next_check = shared.next_health_check(up.id);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break "client shut down".to_owned(),
            r = &mut waiting => break match r {
                Ok(reason) => format!("session ended ({reason:?})"),
                Err(e) => format!("session task failed: {e}"),
            },
            _ = up.kick.notified() => {
                recycle(shared, up, &session, &mut waiting, shutdown).await;
                break "calls kept timing out; reconnecting".to_owned();
            }
            _ = up.probe.notified() => {
                let timeout = shared.health_timeout();
                let ok = matches!(tokio::time::timeout(timeout, check(&session)).await, Ok(true));
                shared.record_check(up.id, ok);
                if !ok {
                    break format!("a request failed in transport and the check did not answer within {timeout:?}");
                }
            }
            _ = up.relist.notified() => {
                if let Ok(Ok(tools)) = tokio::time::timeout(up.config.call_timeout, list_tools(&peer)).await {
                    *up.tools.lock().expect("tools lock") = Some(tools);
                    shared.on_tools_change();
                }
            }
            _ = tokio::time::sleep_until(next_check) => {
                let timeout = shared.health_timeout();
                let ok = matches!(tokio::time::timeout(timeout, check(&session)).await, Ok(true));
                if !shared.record_check(up.id, ok) && !ok {
                    break format!("health check failed (no answer within {timeout:?})");
                }
            }
        }
    };
    // Fail the calls in flight ourselves, in order, before rmcp's random-order wake-ups matter;
    // send the cancellations of abandoned requests, then close.
    *up.session.write().expect("session lock") = None;
    session.in_flight.fail_all();
    session.flush_cancels().await;
    token.cancel();
    reason
}

/// Takes a session whose calls keep timing out out of service without collateral damage: no
/// new call is sent to it, the calls in flight that may be replayed are failed at once (the
/// engine retries them elsewhere), and the others may still finish, until the call timeout, the
/// session's end or shutdown, whichever comes first.
async fn recycle<F: Future + Unpin>(
    shared: &Arc<Shared>,
    up: &Upstream,
    session: &Session,
    waiting: &mut F,
    shutdown: &CancellationToken,
) {
    up.set_link(LinkState::Down { reason: "recycling: calls kept timing out".to_owned() });
    shared.on_link_change(up.id);
    *up.session.write().expect("session lock") = None;
    session.in_flight.fail_replayable();
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => {}
        _ = waiting => {}
        _ = tokio::time::timeout(up.config.call_timeout, session.in_flight.drained()) => {}
    }
}

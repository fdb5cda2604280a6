//! `MultiServerClient` against real test-server processes and sockets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gauntlet_client::{CallError, Era, LinkState, MultiServerClient};
use gauntlet_core::aggregate::Aggregation;
use gauntlet_core::breaker::Phase;
use serde_json::json;

use crate::support::{NO_HANG, NetServer, args, config, stdio, text};

async fn ready(client: &MultiServerClient) {
    client.wait_ready(Duration::from_secs(20)).await;
    for s in client.servers() {
        assert_eq!(s.link, LinkState::Ready, "{} did not connect", s.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_killed_mid_run_fails_over_and_no_call_is_lost_or_hangs() {
    let c = config(
        vec![stdio("a", "g", &[]), stdio("b", "g", &["--exit-after", "40"]), stdio("c", "g", &[])],
        &json!({"balancer": "round-robin", "call_timeout": "2s", "deadline": "10s"}),
    );
    let client = Arc::new(MultiServerClient::start(c));
    ready(&client).await;
    let mut tasks = Vec::new();
    for i in 0..300 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let call = client.call_tool("g__echo", args(json!({"text": format!("m{i}")})));
            tokio::time::timeout(NO_HANG, call).await
        }));
    }
    let mut by_server = BTreeMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let report = t.await.expect("task").expect("no call hangs").unwrap_or_else(|e| panic!("call {i} lost: {e}"));
        assert_eq!(text(&report.result), format!("m{i}"));
        *by_server.entry(report.server).or_insert(0) += 1;
    }
    assert_eq!(by_server.values().sum::<u32>(), 300, "every call ends with exactly one answer");
    // `b` really died mid-run: its session ended and the supervisor had to reconnect it.
    let b = client.servers().into_iter().find(|s| s.name == "b").expect("b");
    assert!(b.connects >= 2 || matches!(b.link, LinkState::Down { .. }), "b never died: {b:?}");
    assert!(by_server["a"] > 80 && by_server["c"] > 80, "{by_server:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_opens_its_breaker_and_closes_it_after_recovering() {
    // `stall` answers 5 calls, then nothing for 2.5 s, then answers again (one process, over
    // HTTP, so reconnecting does not reset it).
    let stall = NetServer::start("stall", &["--stall-after", "5", "--stall-ms", "2500"]);
    let c = config(
        vec![stall.entry("stall", "g"), stdio("good", "g", &[])],
        &json!({"balancer": "round-robin", "call_timeout": "200ms", "deadline": "5s",
               "breaker": {"consecutive_failures": 2, "open_for": "500ms"}}),
    );
    let client = MultiServerClient::start(c);
    ready(&client).await;
    let mut states = Vec::new();
    let mut answered_by_stall_after_open = 0;
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let report = tokio::time::timeout(NO_HANG, client.call_tool("g__whoami", args(json!({}))))
            .await
            .expect("no call hangs")
            .expect("the other replica answers");
        let breaker = client.servers().into_iter().find(|s| s.name == "stall").expect("stall").breaker;
        if states.last() != Some(&breaker) {
            states.push(breaker);
        }
        if states.contains(&Phase::Open) && report.server == "stall" {
            answered_by_stall_after_open += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opened = states.iter().position(|&s| s == Phase::Open).unwrap_or_else(|| panic!("never opened: {states:?}"));
    assert!(states[opened..].contains(&Phase::Closed), "never closed again: {states:?}");
    assert!(answered_by_stall_after_open > 0, "traffic never returned to the recovered server: {states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_answers_and_duplicate_tools_get_clear_errors_while_other_servers_keep_working() {
    let c = config(
        vec![stdio("dup", "d", &["--duplicate-tools"]), stdio("noisy", "n", &[]), stdio("fine", "f", &[])],
        &json!({"call_timeout": "1s", "deadline": "3s", "retry": {"max_attempts": 1}}),
    );
    let client = MultiServerClient::start(c);
    ready(&client).await;
    // Duplicates: skipped with a reason, the first listing kept.
    let skipped = client.skipped_tools();
    assert!(skipped.iter().any(|s| s.contains("server `dup`") && s.contains("listed twice")), "{skipped:?}");
    assert!(client.catalog().iter().any(|e| e.exposed == "d__echo"));
    // A line of garbage on the stream is dropped by the transport; the session survives.
    let garbage = client.call_tool("n__garbage", args(json!({}))).await.expect("the garbage line is skipped");
    assert_eq!(text(&garbage.result), "garbage sent");
    let after = client.call_tool("n__echo", args(json!({"text": "still here"}))).await.expect("noisy keeps answering");
    assert_eq!(text(&after.result), "still here");
    assert_eq!(client.servers().iter().find(|s| s.name == "noisy").map(|s| s.connects), Some(1), "no reconnect needed");
    // An answer over the size limit is dropped, and the call fails with a timeout, not a panic.
    let huge = client.call_tool("n__huge", args(json!({"bytes": 8 * 1024 * 1024}))).await;
    match huge {
        Err(CallError::Failed { last, .. }) => assert_eq!(last.to_string(), "timeout"),
        other => panic!("an oversized answer must fail clearly: {other:?}"),
    }
    // A tool error is an answer, not a failure.
    let fail = client.call_tool("f__fail", args(json!({}))).await.expect("a tool error is a result");
    assert_eq!(fail.result.is_error, Some(true));
    let fine = client.call_tool("f__echo", args(json!({"text": "ok"}))).await.expect("fine is fine");
    assert_eq!(text(&fine.result), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_tcp_legacy_and_modern_servers_serve_one_catalog() {
    let http = NetServer::start("web", &[]);
    let tcp = NetServer::start_tcp("raw", &[]);
    let c = config(
        vec![
            http.entry("web", "g"),
            tcp.entry("raw", "g"),
            stdio("old", "g", &["--era", "legacy"]),
            stdio("new", "g", &["--era", "modern"]),
        ],
        &json!({"balancer": "round-robin"}),
    );
    let client = MultiServerClient::start(c);
    ready(&client).await;
    let eras: BTreeMap<_, _> = client.servers().into_iter().map(|s| (s.name, (s.transport, s.era))).collect();
    assert_eq!(eras["old"], ("stdio", Some(Era::Legacy)));
    assert_eq!(eras["new"], ("stdio", Some(Era::Modern)));
    assert_eq!(eras["web"].0, "http");
    assert_eq!(eras["raw"].0, "tcp");
    let mut answered = BTreeMap::new();
    for _ in 0..40 {
        let r = client.call_tool("g__whoami", args(json!({}))).await.expect("every transport and era answers");
        *answered.entry(text(&r.result)).or_insert(0) += 1;
    }
    assert_eq!(answered.len(), 4, "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsafe_tool_is_never_replayed_and_a_safe_one_is_retried_elsewhere() {
    // Every call to `flaky` fails with a server error; `ok` always answers.
    let c = config(
        vec![stdio("flaky", "g", &["--fail-every", "1"]), stdio("ok", "g", &[])],
        &json!({"balancer": "round-robin", "retry": {"max_attempts": 3}}),
    );
    let client = MultiServerClient::start(c);
    ready(&client).await;
    for _ in 0..6 {
        let safe = client.call_tool("g__echo", args(json!({"text": "x"}))).await.expect("retried on `ok`");
        assert_eq!(safe.server, "ok");
        match client.call_tool("g__write", args(json!({"key": "k"}))).await {
            Ok(r) => assert_eq!(r.attempts, 1, "a write is sent once"),
            Err(CallError::Failed { attempts, reason, .. }) => {
                assert_eq!(attempts, 1);
                assert_eq!(format!("{reason:?}"), "Unsafe");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_start_is_named_with_its_cause_and_the_rest_serve() {
    let mut servers = vec![stdio("ok", "g", &[])];
    servers.push(("ghost".to_owned(), json!({"command": "/nonexistent/mcp-server", "group": "g"})));
    let client = MultiServerClient::start(config(servers, &json!({})));
    client.wait_ready(Duration::from_secs(20)).await;
    let ghost = client.servers().into_iter().find(|s| s.name == "ghost").expect("listed");
    match ghost.link {
        LinkState::Down { reason } => assert!(reason.contains("cannot start `/nonexistent/mcp-server`"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let r = client.call_tool("g__echo", args(json!({"text": "hi"}))).await.expect("ok serves");
    assert_eq!(r.server, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_is_cancelled_on_the_server_and_tool_timeouts_apply() {
    let c = config(
        vec![stdio("s", "g", &[])],
        &json!({"call_timeout": "5s", "retry": {"max_attempts": 1}, "tools": {"g__slow": {"timeout": "200ms"}}}),
    );
    let client = MultiServerClient::start(c);
    ready(&client).await;
    let started = tokio::time::Instant::now();
    let r = client.call_tool("g__slow", args(json!({"ms": 3_000}))).await;
    assert!(matches!(r, Err(CallError::Failed { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "the tool's 200 ms timeout applies, not the server's 5 s");
    // The server saw `notifications/cancelled` and stopped the work.
    let mut cancelled = 0;
    for _ in 0..50 {
        let stats = client.call_tool("g__stats", args(json!({}))).await.expect("stats");
        let v: serde_json::Value = serde_json::from_str(&text(&stats.result)).expect("stats are JSON");
        cancelled = v["cancelled"].as_u64().unwrap_or(0);
        if cancelled > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cancelled, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_caller_under_its_own_token() {
    let client = MultiServerClient::start(config(vec![stdio("s", "g", &[])], &json!({})));
    ready(&client).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = gauntlet_client::CallOptions { progress: Some(("caller-7".to_owned(), tx)), ..Default::default() };
    client.call_tool_with("g__slow", args(json!({"ms": 50})), options).await.expect("slow answers");
    let mut seen = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        seen.push((p.token, p.progress));
        if seen.len() == 2 {
            break;
        }
    }
    // The first one may come before the call's route is made (rmcp tells the token only once
    // the request is sent) and is delivered when it is. rmcp hands each notification to its own
    // task, so the last one, sent just before the answer, may be handled after the call ended:
    // the first always arrives, and each arrives under the caller's token, in order.
    assert_eq!(seen.first(), Some(&("caller-7".to_owned(), 0.0)), "{seen:?}");
    assert!(seen.iter().all(|(t, _)| t == "caller-7"), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_rejects_at_once_instead_of_waiting() {
    let mut servers = vec![stdio("s", "g", &["--delay-ms", "400"])];
    servers[0].1["maxConcurrency"] = json!(1);
    servers[0].1["queue"] = json!(1);
    let client = Arc::new(MultiServerClient::start(config(servers, &json!({"retry": {"max_attempts": 1}}))));
    ready(&client).await;
    let started = tokio::time::Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let r = client.call_tool("g__echo", args(json!({"text": "q"}))).await;
                (r, tokio::time::Instant::now())
            })
        })
        .collect();
    let mut answered = 0;
    for c in calls {
        match c.await.expect("task") {
            (Ok(_), _) => answered += 1,
            (Err(CallError::Failed { last, .. }), at) => {
                assert_eq!(last.to_string(), "rejected");
                assert!(at - started < Duration::from_millis(300), "a rejection must be fast");
            }
            (Err(e), _) => panic!("{e}"),
        }
    }
    // One in flight plus one queued are served; the other two are turned away at once.
    assert_eq!(answered, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_majority_and_quorum_answer_without_waiting_for_a_replica_that_never_does() {
    // Three replicas answer at once; the fourth holds every call for an hour, and the call's
    // own timeout is longer still: only racing returns before NO_HANG.
    let c = config(
        vec![
            stdio("a", "g", &[]),
            stdio("b", "g", &[]),
            stdio("c", "g", &[]),
            stdio("stuck", "g", &["--delay-ms", "3600000"]),
        ],
        &json!({"call_timeout": "2h", "deadline": "2h"}),
    );
    let client = MultiServerClient::start(c);
    ready(&client).await;
    let echo = || args(json!({"text": "same"}));
    for aggregation in [Aggregation::First, Aggregation::Fastest] {
        let (_, servers) = tokio::time::timeout(NO_HANG, client.call_all("g__echo", echo(), aggregation))
            .await
            .expect("no wait for the stuck replica")
            .expect("answers");
        assert_eq!(servers.len(), 1, "{aggregation:?}: {servers:?}");
        assert_ne!(servers[0], "stuck");
    }
    for aggregation in [Aggregation::Majority, Aggregation::Quorum(2)] {
        let (value, servers) = tokio::time::timeout(NO_HANG, client.call_all("g__echo", echo(), aggregation))
            .await
            .expect("settled once enough agree")
            .expect("answers");
        assert_eq!(value.pointer("/content/0/text").and_then(|v| v.as_str()), Some("same"));
        assert!(!servers.contains(&"stuck".to_owned()), "{aggregation:?}: {servers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_read_only_answer_comes_from_the_cache_only_when_a_ttl_is_set() {
    for (ttl, cached) in [(json!({"ttl": "10m"}), true), (json!({}), false)] {
        let client = MultiServerClient::start(config(vec![stdio("a", "g", &[])], &json!({"cache": ttl})));
        ready(&client).await;
        let first = client.call_tool("g__echo", args(json!({"text": "x"}))).await.expect("answers");
        let second = client.call_tool("g__echo", args(json!({"text": "x"}))).await.expect("answers");
        let other = client.call_tool("g__echo", args(json!({"text": "y"}))).await.expect("answers");
        assert!(!first.cached && !other.cached, "different arguments are different answers");
        assert_eq!(second.cached, cached);
        assert_eq!(second.attempts, u32::from(!cached));
        assert_eq!(text(&second.result), "x");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_http_replica_costs_a_failover_not_the_call_timeout() {
    let (a, b, c) = (NetServer::start("a", &[]), NetServer::start("b", &[]), NetServer::start("c", &[]));
    let timeout = Duration::from_secs(10);
    let cfg = config(
        vec![a.entry("a", "g"), b.entry("b", "g"), c.entry("c", "g")],
        &json!({"balancer": "round-robin", "call_timeout": "10s", "deadline": "30s"}),
    );
    let client = MultiServerClient::start(cfg);
    ready(&client).await;
    for _ in 0..6 {
        client.call_tool("g__whoami", args(json!({}))).await.expect("all three answer");
    }
    drop(b);
    let (mut answered, mut tried_dead) = (BTreeMap::new(), 0);
    for i in 0..30 {
        let r = tokio::time::timeout(NO_HANG, client.call_tool("g__whoami", args(json!({}))))
            .await
            .expect("no call hangs")
            .unwrap_or_else(|e| panic!("call {i}: a safe call fails over: {e}"));
        // Failing over from the dead replica takes a refused connection and a retry, far from
        // the 10 s an attempt may wait (a tenth of it is the bound here, not a speed claim).
        assert!(r.latency < timeout / 10, "call {i} took {:?} ({:?})", r.latency, r.tried);
        *answered.entry(text(&r.result)).or_insert(0) += 1;
        tried_dead += usize::from(r.tried.iter().any(|s| s == "b"));
    }
    assert!(tried_dead >= 1, "some call was sent to the dead replica and failed over");
    assert!(!answered.contains_key("b"), "{answered:?}");
    assert_eq!(answered.values().sum::<u32>(), 30);
    // The dead replica's session was probed and torn down, not left for a health check.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dead = client.servers().into_iter().find(|s| s.name == "b").expect("b");
    assert!(!matches!(dead.link, LinkState::Ready), "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_answer_over_the_message_limit_fails_its_call_and_the_server_keeps_serving() {
    let server = NetServer::start("web", &[]);
    let client = MultiServerClient::start(config(vec![server.entry("web", "g")], &json!({"call_timeout": "10s"})));
    ready(&client).await;
    // Just under the limit is an answer (the JSON around the text is a few hundred bytes).
    let under = client.call_tool("g__huge", args(json!({"bytes": gauntlet_client::MAX_MESSAGE_BYTES - 1024}))).await;
    assert_eq!(under.map(|r| text(&r.result).len()).ok(), Some(gauntlet_client::MAX_MESSAGE_BYTES - 1024));
    let over = tokio::time::timeout(
        NO_HANG,
        client.call_tool("g__huge", args(json!({"bytes": gauntlet_client::MAX_MESSAGE_BYTES + 1}))),
    )
    .await
    .expect("no hang");
    match over {
        // Refused as it arrives: a transport failure at once, not a wait for the timeout.
        Err(CallError::Failed { last, .. }) => assert_eq!(last, gauntlet_core::outcome::Outcome::Transport),
        other => panic!("an answer over the limit must fail its call: {:?}", other.map(|r| r.tried)),
    }
    let after = client.call_tool("g__echo", args(json!({"text": "still here"}))).await.expect("web keeps answering");
    assert_eq!(text(&after.result), "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_an_http_server_reuse_its_connections() {
    let server = NetServer::start("web", &[]);
    let client = MultiServerClient::start(config(vec![server.entry("web", "g")], &json!({})));
    ready(&client).await;
    async fn connections(client: &MultiServerClient) -> u64 {
        let r = client.call_tool("g__stats", args(json!({}))).await.expect("stats");
        let stats: serde_json::Value = serde_json::from_str(&text(&r.result)).expect("stats are JSON");
        stats["connections"].as_u64().expect("a count")
    }
    let before = connections(&client).await;
    for i in 0..50 {
        client.call_tool("g__echo", args(json!({"text": i.to_string()}))).await.expect("an answer");
    }
    let after = connections(&client).await;
    // One POST at a time goes over a kept-alive connection: not one connection per call.
    assert!(after - before <= 2, "{} connections for 51 calls", after - before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recycled_session_drains_what_cannot_be_replayed_and_delivers_its_cancellations_first() {
    // `a` answers everything after 400 ms and alone offers `slow`, `write` and `stats`; `b`
    // answers `echo` at once. `slow` times out after 150 ms, so three of them recycle a's session
    // while an unsafe `write` and a safe `echo` are in flight on it.
    let a = NetServer::start("a", &["--delay-ms", "400"]);
    let b = NetServer::start("b", &["--tools", "echo,whoami"]);
    let c = config(
        vec![a.entry("a", "g"), b.entry("b", "g")],
        &json!({"balancer": "round-robin", "call_timeout": "5s", "deadline": "10s",
                "retry": {"max_attempts": 2}, "tools": {"g__slow": {"timeout": "150ms"}}}),
    );
    let client = Arc::new(MultiServerClient::start(c));
    ready(&client).await;
    let spawn = |tool: &'static str, arguments: serde_json::Value| {
        let client = client.clone();
        tokio::spawn(async move { client.call_tool(tool, args(arguments)).await })
    };
    let write = spawn("g__write", json!({"key": "k"}));
    let echoes: Vec<_> = (0..2).map(|i| spawn("g__echo", json!({"text": i.to_string()}))).collect();
    let slow: Vec<_> = (0..3).map(|_| spawn("g__slow", json!({"ms": 0}))).collect();
    for s in slow {
        let r = tokio::time::timeout(NO_HANG, s).await.expect("no hang").expect("joins");
        // Timed out on a, with no other server offering it to retry on.
        assert!(matches!(&r, Err(CallError::NoServer { tried, .. }) if tried == &["a"]), "{r:?}");
    }
    // The unsafe write was not failed with the session: it drained and answered.
    let written = tokio::time::timeout(NO_HANG, write).await.expect("no hang").expect("joins");
    assert_eq!(
        written.map(|r| text(&r.result)).ok().as_deref(),
        Some("1"),
        "the write in flight is not collateral damage"
    );
    // The echo sent to a was failed with the session and answered by b.
    let mut tried = Vec::new();
    for e in echoes {
        let r =
            tokio::time::timeout(NO_HANG, e).await.expect("no hang").expect("joins").expect("a safe call is answered");
        tried.push(r.tried);
    }
    tried.sort();
    assert_eq!(tried, [vec!["a".to_owned(), "b".to_owned()], vec!["b".to_owned()]]);
    // a's session was recycled; its server saw four cancellations, all sent before it closed:
    // the three timed-out calls' and the failed-over echo's.
    let mut seen = None;
    for _ in 0..100 {
        if let Ok(r) = client.call_tool("g__stats", args(json!({}))).await {
            let v: serde_json::Value = serde_json::from_str(&text(&r.result)).expect("stats are JSON");
            seen = Some((v["cancelled"].as_u64(), v["writes"].as_u64()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, Some((Some(4), Some(1))));
    let a_status = client.servers().into_iter().find(|s| s.name == "a").expect("a");
    assert_eq!(a_status.connects, 2, "a's session was recycled once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_abandoned_at_shutdown_are_cancelled_on_the_server_before_the_client_closes() {
    let server = NetServer::start("s", &[]);
    let cfg = || config(vec![server.entry("s", "g")], &json!({"call_timeout": "30s"}));
    let client = Arc::new(MultiServerClient::start(cfg()));
    ready(&client).await;
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call_tool("g__slow", args(json!({"ms": 20_000}))).await })
        })
        .collect();
    // Every call is on the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Abandoned, and the client shut down at once.
    for c in &calls {
        c.abort();
    }
    for c in calls {
        let _ = c.await;
    }
    let client = Arc::try_unwrap(client).expect("the last handle");
    client.shutdown().await;
    // Another client asks the same server process what it saw.
    let observer = MultiServerClient::start(cfg());
    ready(&observer).await;
    let r = observer.call_tool("g__stats", args(json!({}))).await.expect("stats");
    let v: serde_json::Value = serde_json::from_str(&text(&r.result)).expect("stats are JSON");
    assert_eq!(v["cancelled"].as_u64(), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_recycled_at_once_still_sends_the_cancellations_of_its_timed_out_calls() {
    // Nothing else is in flight, so the session closes as soon as the third call times out.
    let a = NetServer::start("a", &["--delay-ms", "400"]);
    let c = config(
        vec![a.entry("a", "g")],
        &json!({"call_timeout": "5s", "retry": {"max_attempts": 1}, "tools": {"g__slow": {"timeout": "100ms"}},
                "breaker": {"consecutive_failures": 50}}),
    );
    let client = Arc::new(MultiServerClient::start(c));
    ready(&client).await;
    for round in 0..3 {
        let slow: Vec<_> = (0..3)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.call_tool("g__slow", args(json!({"ms": 0}))).await })
            })
            .collect();
        for s in slow {
            let r = tokio::time::timeout(NO_HANG, s).await.expect("no hang").expect("joins");
            assert!(r.is_err(), "round {round}: {r:?}");
        }
        // The next round waits for the recycled session's successor.
        for _ in 0..2_000 {
            let s = &client.servers()[0];
            if s.link == LinkState::Ready && s.connects == round + 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let r = client.call_tool("g__stats", args(json!({}))).await.expect("stats (after its 400 ms delay)");
    let v: serde_json::Value = serde_json::from_str(&text(&r.result)).expect("stats are JSON");
    assert_eq!(v["cancelled"].as_u64(), Some(9), "every timed-out call was cancelled on the server");
    assert_eq!(client.servers()[0].connects, 4, "recycled after each round");
}

//! The policy's documentation and its type stay in step: every key the type reads is in
//! `docs/policy.md`'s tables, and every key the tables document is one the type reads.

use std::collections::BTreeSet;

use gauntlet_core::policy::{HedgePolicy, Policy, RoutePolicy, SlowStartPolicy, ToolPolicy};
use gauntlet_core::route::{Fallback, Pattern};
use serde_json::Value;

/// Every key path of `value`: `a.b` for tables, `a[].b` for lists (their first element).
fn paths(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                paths(&p, v, out);
            }
        }
        Value::Array(items) if items.first().is_some_and(Value::is_object) => {
            paths(&format!("{prefix}[]"), &items[0], out);
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn every_policy_key_is_documented_and_every_documented_key_exists() {
    // A policy with every optional part present, so that serialising it names every key.
    let mut full = Policy {
        slow_start: Some(SlowStartPolicy::default()),
        hedge: Some(HedgePolicy {
            after: Some("1s".parse().unwrap()),
            percentile: Some(gauntlet_core::policy::Ratio::of(0.9)),
            ..HedgePolicy::default()
        }),
        routes: vec![RoutePolicy {
            tools: Pattern::new("*").unwrap(),
            tags: vec!["t".to_owned()],
            capabilities: vec!["c".to_owned()],
        }],
        fallbacks: vec![Fallback { group: "a".to_owned(), then: vec!["b".to_owned()] }],
        ..Policy::default()
    };
    full.cache.ttl = Some("1s".parse().unwrap());
    full.tools.insert(
        "<exposed>".to_owned(),
        ToolPolicy {
            timeout: Some("1s".parse().unwrap()),
            max_attempts: Some(gauntlet_core::policy::Count::of(1)),
            hedge: Some(true),
            idempotent: Some(true),
        },
    );
    let mut typed = BTreeSet::new();
    paths("", &serde_json::to_value(&full).unwrap(), &mut typed);

    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md")).unwrap();
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(key, _)| key.to_owned()))
        .collect();
    let undocumented: Vec<_> = typed.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&typed).collect();
    assert!(undocumented.is_empty(), "keys the type reads but docs/policy.md does not document: {undocumented:?}");
    assert!(unknown.is_empty(), "keys docs/policy.md documents but the type does not read: {unknown:?}");
}

//! Scenario files: TOML, checked at the edge. Every error is `file:line:col: message`, with a
//! hint where one helps; nothing in a file can make the harness panic.
//!
//! The format is documented field by field in `scenarios/README.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use gauntlet_core::aggregate::Aggregation;
use gauntlet_core::balance::Strategy;
use gauntlet_core::policy::{MAX_FAN_OUT, Policy};
use serde::Deserialize;

use crate::expect::{
    Bound, Bounds, Comparison, Expectations, MAX_ORDER, METRICS, Metric, Order, Unit, duration, instant,
};
use crate::scenario::{
    Affinity, Arrivals, Fault, FaultKind, PhaseSpec, ProtocolEra, Scenario, ServerGroup, ServiceTime, SimTool, Workload,
};
use gauntlet_core::ServerId;
use gauntlet_core::fleet::MAX_WEIGHT;
use gauntlet_core::route::{Catalog, CatalogConfig, ServerTools, ToolHints, ToolInfo};

/// What is wrong with a scenario file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The file, as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something to say.
    pub hint: Option<String>,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FileError {}

/// A checked scenario file: the world, the runs it asks for, and what must hold.
#[derive(Clone, Debug)]
pub struct ScenarioFile {
    /// The file, as given.
    pub file: String,
    /// The hypothesis, one paragraph.
    pub description: String,
    /// The scenario with the first seed and the policy's strategy.
    pub scenario: Scenario,
    /// The seeds to run.
    pub seeds: Vec<u64>,
    /// The policies to run, each on the same world: the `[matrix]`'s strategies, the
    /// `[[variant]]`s, or the `[client]` policy alone.
    pub variants: Vec<Variant>,
    /// What must hold.
    pub expect: Expectations,
}

/// One policy a scenario file runs. Every variant of a file runs the same world: the same
/// seed, fleet, faults and arrivals.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Its name: a `[[variant]]`'s own, or the strategy's (a `[matrix]` of balancers, or the
    /// `[client]` policy alone). Comparisons, `--variant`, reproduce lines and results name it.
    pub name: String,
    /// The client's policy: the `[client]` table with the variant's keys over it.
    pub policy: Policy,
}

impl Variant {
    /// Whether it is a `[[variant]]`, named apart from its strategy.
    pub fn is_named(&self) -> bool {
        self.name != self.policy.balancer.name()
    }
}

/// The most variants a file may run.
pub const MAX_VARIANTS: usize = 64;

impl ScenarioFile {
    /// The scenario for one seed and variant.
    pub fn scenario(&self, seed: u64, variant: &Variant) -> Scenario {
        let mut s = self.scenario.clone();
        s.seed = seed;
        s.policy = variant.policy.clone();
        s
    }

    /// The `[client]` policy with `strategy` as its balancer, named after it: what
    /// `--strategy` runs.
    pub fn variant_for(&self, strategy: Strategy) -> Variant {
        Variant {
            name: strategy.name().to_owned(),
            policy: Policy { balancer: strategy, ..self.scenario.policy.clone() },
        }
    }

    /// Whether the file runs `[[variant]]`s.
    pub fn has_named_variants(&self) -> bool {
        self.variants.iter().any(Variant::is_named)
    }

    /// Runs `strategy` only (the `[client]` policy with it as the balancer), with the runs its
    /// comparisons need, as `gauntlet run --strategy` does.
    pub fn select_strategy(&mut self, strategy: Strategy) {
        let needed = self.expect.needed_with(strategy.name());
        self.variants = needed
            .iter()
            .map(|n| self.variants.iter().find(|v| v.name == *n).cloned().unwrap_or_else(|| self.variant_for(strategy)))
            .collect();
    }

    /// Runs the variant `name` only, with the runs its comparisons need; `false` if there is
    /// no such variant.
    pub fn select_variant(&mut self, name: &str) -> bool {
        if !self.variants.iter().any(|v| v.name == name) {
            return false;
        }
        let needed = self.expect.needed_with(name);
        self.variants.retain(|v| needed.contains(&v.name));
        true
    }

    /// `count` seeds from the file's first.
    pub fn with_seeds(mut self, count: u64) -> ScenarioFile {
        let first = self.seeds.first().copied().unwrap_or(1);
        self.seeds = (0..count).map(|i| first.wrapping_add(i)).collect();
        self
    }
}

// The raw shape, as serde reads it. Unknown keys are errors.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    description: String,
    seed: Option<u64>,
    seeds: Option<u64>,
    duration: String,
    tick: Option<String>,
    recovery_bound: Option<String>,
    trusted: Option<bool>,
    fleet: Vec<RawGroup>,
    #[serde(default)]
    client: Policy,
    matrix: Option<RawMatrix>,
    #[serde(default)]
    variant: Vec<toml::Table>,
    workload: RawWorkload,
    #[serde(default)]
    phase: Vec<RawPhase>,
    #[serde(default)]
    fault: Vec<RawFault>,
    #[serde(default)]
    expect: RawExpect,
    /// An envelope's fault generator (`gauntlet explore`); refused by [`parse`].
    explore: Option<crate::explore::RawExplore>,
    /// A deliberately broken client (to check that checkers and the explorer catch it).
    sabotage: Option<String>,
    /// A workflow workload's workflow (`docs/workflows.md`).
    workflow: Option<crate::flow_file::RawFlow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    group: String,
    replica_set: Option<String>,
    count: Option<u32>,
    priority: Option<u32>,
    weight: Option<u32>,
    #[serde(default)]
    tags: Vec<String>,
    era: Option<String>,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    unsafe_tools: Vec<String>,
    #[serde(default)]
    mislabeled_tools: Vec<String>,
    #[serde(default)]
    idempotent_tools: Vec<String>,
    latency: Option<RawLatency>,
    error_rate: Option<f64>,
    wrong_rate: Option<f64>,
    capacity: Option<u32>,
    queue: Option<u32>,
    warmup: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    constant: Option<String>,
    min: Option<String>,
    max: Option<String>,
    median: Option<String>,
    p99: Option<String>,
    pareto_min: Option<String>,
    alpha: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    balancer: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    arrivals: RawArrivals,
    #[serde(default)]
    mix: Vec<RawMix>,
    deadline: Option<String>,
    aggregate: Option<RawAggregate>,
    affinity: Option<RawAffinity>,
}

/// `affinity = { keys = 1000 }` or `{ keys = 1000, zipf = 1.1 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAffinity {
    keys: u32,
    zipf: Option<f64>,
}

/// `aggregate = "majority"`, or `aggregate = { quorum = 2 }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawAggregate {
    Named(String),
    Quorum { quorum: u32 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrivals {
    poisson: Option<f64>,
    callers: Option<u32>,
    think: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMix {
    tool: String,
    weight: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    name: String,
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at: String,
    #[serde(rename = "for")]
    lasts: Option<String>,
    every: Option<String>,
    kind: String,
    target: String,
    latency: Option<String>,
    rate: Option<f64>,
    tool: Option<String>,
    extra: Option<String>,
    tools: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    lost: Option<u64>,
    success_rate: Option<String>,
    correct_rate: Option<String>,
    p50: Option<String>,
    p90: Option<String>,
    p99: Option<String>,
    p999: Option<String>,
    retry_amplification: Option<String>,
    recovery: Option<String>,
    detection: Option<String>,
    hedge_rate: Option<String>,
    order: Option<Vec<String>>,
    #[serde(default)]
    phase: BTreeMap<String, RawPhaseExpect>,
    #[serde(default)]
    server: BTreeMap<String, RawServerExpect>,
    #[serde(default)]
    compare: Vec<String>,
    /// Expectations that only one run of the file (a strategy of its matrix, or a variant) must
    /// meet.
    #[serde(default)]
    run: BTreeMap<String, RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhaseExpect {
    success_rate: Option<String>,
    correct_rate: Option<String>,
    p50: Option<String>,
    p90: Option<String>,
    p99: Option<String>,
    p999: Option<String>,
    keys_moved: Option<String>,
    order: Option<Vec<String>>,
    #[serde(default)]
    share: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServerExpect {
    breaker_opens: Option<String>,
    ejections: Option<String>,
    load_share: Option<String>,
}

/// A step of a path into the document: a key or an array index.
#[derive(Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

pub(crate) use Seg::{Index, Key};

/// Finds where a path's value is written, to point errors at it.
pub(crate) struct Locator<'a> {
    file: &'a str,
    text: &'a str,
    root: Option<toml::Spanned<toml::de::DeTable<'a>>>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Locator<'a> {
        Locator { file, text, root: toml::de::DeTable::parse(text).ok() }
    }

    fn span(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        let root = self.root.as_ref()?;
        let (first, rest) = path.split_first()?;
        let Key(first) = first else { return None };
        let mut value = root.get_ref().get(*first)?;
        for seg in rest {
            value = match seg {
                Key(k) => value.get_ref().get(*k)?,
                Index(i) => value.get_ref().get(*i)?,
            };
        }
        Some(value.span())
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    pub(crate) fn error_at(&self, offset: usize, message: String, hint: Option<String>) -> FileError {
        let (line, col) = self.position(offset);
        FileError { file: self.file.to_owned(), line, col, message, hint }
    }

    /// An error at `path`'s value (at the start of the file if the path is not written).
    pub(crate) fn at(&self, path: &[Seg<'_>], message: impl Into<String>) -> FileError {
        let offset = self.span(path).map_or(0, |s| s.start);
        self.error_at(offset, message.into(), None)
    }

    pub(crate) fn hint(&self, path: &[Seg<'_>], message: impl Into<String>, hint: impl Into<String>) -> FileError {
        let mut e = self.at(path, message);
        e.hint = Some(hint.into());
        e
    }
}

/// The fault kinds, as files spell them.
pub const FAULT_KINDS: &str =
    "partition, one-way, hold, crash, restart, latency, loss, brownout, byzantine, slow-tool, list-change";

/// The most servers a fleet may have: turmoil's cost grows with the square of the hosts.
pub const MAX_SERVERS: u32 = 32;
/// The most entries of a list a user writes (tools of a group, tags, mix entries, phases).
pub const MAX_LIST: usize = 1_000;
/// The largest weight of a tool in the mix (so that the weights' sum fits in 32 bits).
pub const MAX_MIX_WEIGHT: u32 = 1_000_000;
/// The most calls an open-loop workload may offer on average (rate × duration): half of the
/// most a run issues, so a Poisson draw never reaches that cap.
pub const MAX_OFFERED: u64 = crate::workload::MAX_CALLS / 2;
/// The most fault occurrences one run may hold (a repeating fault counts each time).
pub const MAX_FAULTS: usize = 10_000;
/// The most affinity keys a workload may draw from.
pub const MAX_KEYS: u32 = 100_000;
/// The most (key, phase) pairs a run follows.
pub const MAX_KEY_CELLS: u64 = 2_000_000;
/// The longest simulated duration of one run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// Parses and checks a scenario file's `text`; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<ScenarioFile, FileError> {
    let (loc, raw) = read(file, text)?;
    if raw.explore.is_some() {
        return Err(loc.hint(
            &[Key("explore")],
            "this file is an envelope (it has an `[explore]` table)",
            format!("explore it with `gauntlet explore {file}`; run the scenarios it finds"),
        ));
    }
    check(&loc, &raw)
}

/// Parses an envelope: a scenario file with an `[explore]` table (see `crate::explore`).
/// Returns the checked scenario (its own faults, if any, kept) and the checked generator.
pub fn parse_envelope(file: &str, text: &str) -> Result<(ScenarioFile, crate::explore::Generator), FileError> {
    let (loc, raw) = read(file, text)?;
    let Some(explore) = &raw.explore else {
        return Err(loc.hint(&[], "an envelope needs an `[explore]` table", "see scenarios/README.md, \"Envelopes\""));
    };
    let scenario = check(&loc, &raw)?;
    let generator = crate::explore::Generator::check(explore, &scenario.scenario)
        .map_err(|(key, message)| loc.at(&[Key("explore"), Key(key)], message))?;
    Ok((scenario, generator))
}

fn read<'a>(file: &'a str, text: &'a str) -> Result<(Locator<'a>, RawFile), FileError> {
    let loc = Locator::new(file, text);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        if let Some(moved) = moved_key(&loc) {
            return moved;
        }
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().replace('\n', " ");
        let hint = message
            .contains("unknown field")
            .then(|| "see scenarios/README.md for every key a scenario file may have".to_owned());
        loc.error_at(offset, message, hint)
    })?;
    Ok((loc, raw))
}

/// A key of the `[client]` table's earlier format, named with its replacement.
fn moved_key(loc: &Locator<'_>) -> Option<FileError> {
    let (old, new) =
        gauntlet_core::policy::MOVED.iter().find(|(old, _)| loc.span(&[Key("client"), Key(old)]).is_some())?;
    Some(loc.hint(
        &[Key("client"), Key(old)],
        format!("`client.{old}` is now `client.{new}`"),
        "the client's keys moved into tables in this version; see CHANGELOG.md",
    ))
}

pub(crate) fn dur(loc: &Locator<'_>, path: &[Seg<'_>], text: &str) -> Result<Duration, FileError> {
    duration(text).map_err(|m| loc.hint(path, m, "durations are written like \"250ms\", \"5s\" or \"1m 30s\""))
}

fn rate(loc: &Locator<'_>, path: &[Seg<'_>], value: f64) -> Result<f64, FileError> {
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(loc.at(path, format!("{value} is not a rate in [0, 1]"))) }
}

fn check(loc: &Locator<'_>, raw: &RawFile) -> Result<ScenarioFile, FileError> {
    if raw.name.trim().is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(loc.hint(
            &[Key("name")],
            format!("`{}` is not a scenario name", raw.name),
            "use letters, digits, `-` and `_`",
        ));
    }
    if raw.description.trim().is_empty() {
        return Err(loc.hint(
            &[Key("description")],
            "the description is empty",
            "say what the scenario shows: its hypothesis",
        ));
    }
    let duration = dur(loc, &[Key("duration")], &raw.duration)?;
    if duration > MAX_DURATION {
        return Err(loc.at(&[Key("duration")], format!("{duration:?} is longer than the limit of {MAX_DURATION:?}")));
    }
    let tick = match &raw.tick {
        Some(t) => dur(loc, &[Key("tick")], t)?,
        None => Duration::from_millis(1),
    };
    if tick > Duration::from_millis(100) {
        return Err(loc.at(&[Key("tick")], "a tick longer than 100ms cannot resolve call latencies"));
    }
    if tick < Duration::from_millis(1) {
        return Err(loc.hint(
            &[Key("tick")],
            "a tick must be at least 1ms",
            "shorter ticks are not faithful yet: at 200us a latency fault was seen to have no effect",
        ));
    }
    let fleet = fleet(loc, &raw.fleet)?;
    let seed = raw.seed.unwrap_or(1);
    let seeds = match raw.seeds {
        Some(0) => return Err(loc.at(&[Key("seeds")], "a sweep needs at least one seed")),
        Some(n) if n > 10_000 => return Err(loc.at(&[Key("seeds")], "more than 10,000 seeds")),
        Some(n) => (0..n).map(|i| seed.wrapping_add(i)).collect(),
        None => vec![seed],
    };
    client(loc, &raw.client, &fleet)?;
    let variants = variants(loc, raw, &fleet)?;
    let mut scenario =
        Scenario::new(&raw.name, seed, duration, fleet, workload(loc, &raw.workload, raw.workflow.is_some())?);
    if let Some(flow) = &raw.workflow {
        let flow = crate::flow_file::check_flow(loc, &[Key("workflow")], flow, Some(&raw.name))?;
        // The recorder's one "tool": each call it records is a run of the workflow.
        scenario.workload.mix = vec![(flow.workflow.name().to_owned(), 1)];
        scenario.workflow = Some(crate::scenario::SimFlow(std::sync::Arc::new(flow)));
    }
    scenario.tick = tick;
    scenario.policy = raw.client.clone();
    scenario.trusted = raw.trusted.unwrap_or(true);
    if let Some(name) = &raw.sabotage {
        scenario.sabotage = Some(crate::scenario::Sabotage::named(name).ok_or_else(|| {
            let all: Vec<&str> = crate::scenario::Sabotage::ALL.iter().map(|s| s.name()).collect();
            loc.hint(&[Key("sabotage")], format!("`{name}` is not a sabotage"), format!("one of {}", all.join(", ")))
        })?);
    }
    if let Some(bound) = &raw.recovery_bound {
        scenario.recovery_bound = dur(loc, &[Key("recovery_bound")], bound)?;
    }
    check_mix(loc, &scenario)?;
    if let Arrivals::Poisson(rate) = scenario.workload.arrivals
        && rate * duration.as_secs_f64() > MAX_OFFERED as f64
    {
        return Err(loc.hint(
            &[Key("workload"), Key("arrivals"), Key("poisson")],
            format!("{rate}/s for {duration:?} offers more than {MAX_OFFERED} calls, the most one run issues"),
            "lower the rate or shorten the run",
        ));
    }
    scenario.faults = faults(loc, &raw.fault, &scenario)?;
    scenario.phases = phases(loc, &raw.phase, duration)?;
    if let Some(a) = scenario.workload.affinity {
        // The recorder keeps, per phase, which server answered each key.
        let cells = u64::from(a.keys).saturating_mul(scenario.phases().len() as u64);
        if cells > MAX_KEY_CELLS {
            return Err(loc.at(
                &[Key("workload"), Key("affinity"), Key("keys")],
                format!(
                    "{} keys over {} phases is more than {MAX_KEY_CELLS} to follow",
                    a.keys,
                    scenario.phases().len()
                ),
            ));
        }
    }
    let names: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
    let hedging = variants.iter().any(|v| v.policy.hedge.is_some());
    let expect = expectations(loc, &raw.expect, &scenario, &names, hedging)?;
    Ok(ScenarioFile {
        file: loc.file.to_owned(),
        description: raw.description.trim().to_owned(),
        scenario,
        seeds,
        variants,
        expect,
    })
}

/// The runs of a file: its `[matrix]`'s strategies, its `[[variant]]`s, or its `[client]` alone.
fn variants(loc: &Locator<'_>, raw: &RawFile, fleet: &[ServerGroup]) -> Result<Vec<Variant>, FileError> {
    let base = &raw.client;
    if let Some(m) = &raw.matrix {
        if !raw.variant.is_empty() {
            return Err(loc.hint(
                &[Key("variant"), Index(0), Key("name")],
                "a file runs a `[matrix]` of balancers or `[[variant]]`s, not both",
                "give each variant the `balancer` it should run",
            ));
        }
        if m.balancer.is_empty() {
            return Err(loc.at(&[Key("matrix"), Key("balancer")], "the matrix names no strategy"));
        }
        let mut out: Vec<Variant> = Vec::new();
        for (i, b) in m.balancer.iter().enumerate() {
            let path = [Key("matrix"), Key("balancer"), Index(i)];
            let s = strategy_named(loc, &path, b)?;
            if out.iter().any(|v| v.policy.balancer == s) {
                return Err(loc.at(&path, format!("`{b}` is in the matrix twice")));
            }
            out.push(Variant { name: s.name().to_owned(), policy: Policy { balancer: s, ..base.clone() } });
        }
        return Ok(out);
    }
    if raw.variant.is_empty() {
        return Ok(vec![Variant { name: base.balancer.name().to_owned(), policy: base.clone() }]);
    }
    if raw.variant.len() > MAX_VARIANTS {
        return Err(loc.at(&[Key("variant"), Index(MAX_VARIANTS)], format!("more than {MAX_VARIANTS} variants")));
    }
    // The `[client]` table as written, under each variant's keys.
    let client: toml::Table = toml::from_str::<toml::Table>(loc.text)
        .ok()
        .and_then(|t| t.get("client").and_then(toml::Value::as_table).cloned())
        .unwrap_or_default();
    let mut out: Vec<Variant> = Vec::new();
    for (i, table) in raw.variant.iter().enumerate() {
        let at = |key: &'static str| [Key("variant"), Index(i), Key(key)];
        let Some(name) = table.get("name").and_then(toml::Value::as_str) else {
            let first = table.keys().next().map_or("name", String::as_str);
            let path = [Key("variant"), Index(i), Key(first)];
            return Err(loc.hint(
                &path,
                "a variant needs a `name`",
                "name = \"fast-breaker\", then the policy keys it changes",
            ));
        };
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(loc.hint(
                &at("name"),
                format!("`{name}` is not a variant name"),
                "use 1 to 64 characters of a-z, 0-9 and -, starting with a letter",
            ));
        }
        if out.iter().any(|v| v.name == name) {
            return Err(loc.at(&at("name"), format!("two variants are named `{name}`")));
        }
        let mut overrides = table.clone();
        overrides.remove("name");
        for key in ["seed", "deadline"] {
            if overrides.contains_key(key) {
                let path = [Key("variant"), Index(i), Key(key)];
                return Err(loc.at(&path, format!("`variant.{key}` is not used in a scenario: the scenario's own is")));
            }
        }
        // Each key alone first, so that an error points at the key or value that is wrong.
        if let Some((keys, message)) = first_bad(&[], &overrides) {
            let mut path = vec![Key("variant"), Index(i)];
            path.extend(keys.iter().map(|k| Key(k.as_str())));
            return Err(loc.hint(
                &path,
                format!("`{}`: {message}", keys.join(".")),
                "a variant takes the keys of `[client]` (docs/policy.md)",
            ));
        }
        let policy = toml::Value::Table(merged(client.clone(), overrides))
            .try_into::<Policy>()
            .map_err(|e| loc.at(&at("name"), format!("variant `{name}`: {}", e.message().trim())))?;
        check_policy(loc, &policy, fleet, &[Key("variant"), Index(i)])?;
        out.push(Variant { name: name.to_owned(), policy });
    }
    Ok(out)
}

/// The first key of `table` (under the policy keys `prefix`) that a policy refuses on its own,
/// as deep as the refusal goes, with the refusal.
fn first_bad(prefix: &[String], table: &toml::Table) -> Option<(Vec<String>, String)> {
    for (key, value) in table {
        let mut keys = prefix.to_vec();
        keys.push(key.clone());
        let alone = keys
            .iter()
            .rev()
            .fold(value.clone(), |inner, k| toml::Value::Table(toml::Table::from_iter([(k.clone(), inner)])));
        if let Err(e) = alone.try_into::<Policy>() {
            if let toml::Value::Table(inner) = value
                && let Some(deeper) = first_bad(&keys, inner)
            {
                return Some(deeper);
            }
            return Some((keys, e.message().trim().replace('\n', " ")));
        }
    }
    None
}

/// `over`'s keys over `base`'s: tables merge key by key, any other value replaces.
fn merged(mut base: toml::Table, over: toml::Table) -> toml::Table {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                let inner = std::mem::take(b);
                *b = merged(inner, o);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
    base
}

fn strategy_named(loc: &Locator<'_>, path: &[Seg<'_>], name: &str) -> Result<Strategy, FileError> {
    Strategy::from_str(name).map_err(|_| {
        let all: Vec<&str> = Strategy::all().into_iter().map(Strategy::name).collect();
        loc.hint(path, format!("`{name}` is not a balancing strategy"), format!("one of {}", all.join(", ")))
    })
}

fn fleet(loc: &Locator<'_>, raw: &[RawGroup]) -> Result<Vec<ServerGroup>, FileError> {
    if raw.is_empty() {
        return Err(loc.hint(
            &[Key("fleet")],
            "the fleet is empty",
            "add a `[[fleet]]` group with `group`, `count` and `tools`",
        ));
    }
    let mut out: Vec<ServerGroup> = Vec::new();
    let mut servers = 0u32;
    for (i, g) in raw.iter().enumerate() {
        let at = |key| [Key("fleet"), Index(i), Key(key)];
        if g.group.is_empty() || !g.group.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(loc.hint(
                &at("group"),
                format!("`{}` is not a group name", g.group),
                "use letters, digits and `_`",
            ));
        }
        if out.iter().any(|o| o.group == g.group) {
            return Err(loc.at(&at("group"), format!("the group `{}` is defined twice", g.group)));
        }
        let count = g.count.unwrap_or(1);
        if count == 0 {
            return Err(loc.at(&at("count"), "a group needs at least one server"));
        }
        servers = servers.saturating_add(count);
        if servers > MAX_SERVERS {
            return Err(loc.at(&at("count"), format!("the fleet has more than {MAX_SERVERS} servers")));
        }
        if g.tools.len() + g.unsafe_tools.len() + g.mislabeled_tools.len() + g.idempotent_tools.len() > MAX_LIST {
            return Err(loc.at(&at("tools"), format!("a group offers at most {MAX_LIST} tools")));
        }
        let mut tools: Vec<SimTool> = g.tools.iter().map(|t| SimTool::safe(t)).collect();
        tools.extend(g.unsafe_tools.iter().map(|t| SimTool::unsafe_(t)));
        tools.extend(g.mislabeled_tools.iter().map(|t| SimTool { idempotent: true, ..SimTool::unsafe_(t) }));
        tools.extend(g.idempotent_tools.iter().map(|t| SimTool::deduplicated(t)));
        if tools.is_empty() {
            return Err(loc.hint(
                &at("group"),
                format!("the group `{}` offers no tool", g.group),
                "list them in `tools`, `unsafe_tools`, `mislabeled_tools` or `idempotent_tools`",
            ));
        }
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(loc.at(&at("tools"), format!("the tool `{}` is listed twice", w[0])));
        }
        if let Some(t) = names.iter().find(|t| t.is_empty() || t.len() > 64) {
            return Err(loc.at(&at("tools"), format!("`{t}` is not a tool name (1 to 64 characters)")));
        }
        let mut group = ServerGroup::new(&g.group, count, tools, service(loc, i, g.latency.as_ref())?);
        if let Some(set) = &g.replica_set
            && (set.is_empty() || !set.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(loc.hint(
                &at("replica_set"),
                format!("`{set}` is not a replica set name"),
                "use letters, digits and `_`",
            ));
        }
        group.replica_set.clone_from(&g.replica_set);
        group.priority = g.priority.unwrap_or(0);
        group.weight = g.weight.unwrap_or(1);
        if !(1..=MAX_WEIGHT).contains(&group.weight) {
            return Err(loc.at(&at("weight"), format!("a weight is in 1..={MAX_WEIGHT}")));
        }
        if g.tags.len() > MAX_LIST || g.tags.iter().any(|t| t.is_empty() || t.len() > 64) {
            return Err(loc.at(&at("tags"), format!("at most {MAX_LIST} tags of 1 to 64 characters")));
        }
        group.tags.clone_from(&g.tags);
        group.era = match g.era.as_deref() {
            None | Some("both") => ProtocolEra::Both,
            Some("legacy") => ProtocolEra::Legacy,
            Some("modern") => ProtocolEra::Modern,
            Some(other) => {
                return Err(loc.hint(&at("era"), format!("`{other}` is not a protocol era"), "legacy, modern or both"));
            }
        };
        group.error_rate = rate(loc, &at("error_rate"), g.error_rate.unwrap_or(0.0))?;
        group.wrong_rate = rate(loc, &at("wrong_rate"), g.wrong_rate.unwrap_or(0.0))?;
        if g.capacity == Some(0) {
            return Err(loc.at(&at("capacity"), "a capacity must be positive"));
        }
        group.capacity = g.capacity;
        group.queue = g.queue.unwrap_or(0);
        if g.queue.is_some() && g.capacity.is_none() {
            return Err(loc.at(&at("queue"), "a queue needs a `capacity`"));
        }
        group.warmup = g.warmup.as_deref().map(|w| dur(loc, &at("warmup"), w)).transpose()?;
        out.push(group);
    }
    Ok(out)
}

fn service(loc: &Locator<'_>, i: usize, raw: Option<&RawLatency>) -> Result<ServiceTime, FileError> {
    let path = [Key("fleet"), Index(i), Key("latency")];
    let Some(l) = raw else { return Ok(ServiceTime::Constant(Duration::from_millis(10))) };
    let d = |key: &'static str, text: &str| dur(loc, &[Key("fleet"), Index(i), Key("latency"), Key(key)], text);
    let shapes = "{ constant }, { min, max }, { median, p99 } or { pareto_min, alpha }";
    match (l, l.alpha) {
        (
            RawLatency { constant: Some(c), min: None, max: None, median: None, p99: None, pareto_min: None, .. },
            None,
        ) => Ok(ServiceTime::Constant(d("constant", c)?)),
        (
            RawLatency {
                constant: None, min: Some(lo), max: Some(hi), median: None, p99: None, pareto_min: None, ..
            },
            None,
        ) => {
            let (lo, hi) = (d("min", lo)?, d("max", hi)?);
            if hi < lo {
                return Err(loc.at(&path, "`max` is below `min`"));
            }
            Ok(ServiceTime::Uniform(lo, hi))
        }
        (
            RawLatency {
                constant: None, min: None, max: None, median: Some(m), p99: Some(p), pareto_min: None, ..
            },
            None,
        ) => {
            let (median, p99) = (d("median", m)?, d("p99", p)?);
            if p99 < median {
                return Err(loc.at(&path, "`p99` is below `median`"));
            }
            Ok(ServiceTime::LogNormal { median, p99 })
        }
        (
            RawLatency { constant: None, min: None, max: None, median: None, p99: None, pareto_min: Some(m), .. },
            Some(alpha),
        ) => {
            if !(alpha > 1.0 && alpha.is_finite()) {
                return Err(loc.at(&[Key("fleet"), Index(i), Key("latency"), Key("alpha")], "`alpha` must be above 1"));
            }
            Ok(ServiceTime::Pareto { min: d("pareto_min", m)?, alpha })
        }
        _ => Err(loc.hint(&path, "this latency is not one of the shapes", shapes)),
    }
}

/// Checks the `[client]` table beyond single values: keys that do not fit together, keys the
/// scenario sets itself, and names that must be the fleet's.
fn client(loc: &Locator<'_>, policy: &Policy, fleet: &[ServerGroup]) -> Result<(), FileError> {
    for (key, why) in [
        ("seed", "the scenario's `seed` (or `seeds`) seeds the client"),
        ("deadline", "a scenario's calls take `workload.deadline`"),
    ] {
        if loc.span(&[Key("client"), Key(key)]).is_some() {
            return Err(loc.at(&[Key("client"), Key(key)], format!("`client.{key}` is not used in a scenario: {why}")));
        }
    }
    check_policy(loc, policy, fleet, &[Key("client")])
}

/// Cross-key rules of a policy written at `at` (`[client]`, or a variant whose keys are over it).
fn check_policy(loc: &Locator<'_>, policy: &Policy, fleet: &[ServerGroup], at: &[Seg<'_>]) -> Result<(), FileError> {
    let table = match at.first() {
        Some(Key(k)) if *k == "client" => "client",
        _ => "variant",
    };
    policy.check().map_err(|e| {
        let path = policy_path(&e.path);
        let mut full = at.to_vec();
        full.extend(path.iter().copied());
        // A rule broken by a key the variant inherits points at the variant.
        let full = if loc.span(&full).is_some() { full } else { at.to_vec() };
        loc.at(&full, format!("`{table}.{}` {}", e.path, e.message))
    })?;
    let sets: Vec<&str> = fleet.iter().map(ServerGroup::replica_set).collect();
    for (i, f) in policy.fallbacks.iter().enumerate() {
        for (key, name) in std::iter::once(("group", &f.group)).chain(f.then.iter().map(|g| ("then", g))) {
            if !sets.contains(&name.as_str()) {
                let mut full = at.to_vec();
                full.extend([Key("fallbacks"), Index(i), Key(key)]);
                let full = if loc.span(&full).is_some() { full } else { at.to_vec() };
                return Err(loc.hint(
                    &full,
                    format!("no group of the fleet is named `{name}`"),
                    format!("the fleet's groups (replica sets) are {}", sets.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

/// A policy error's dotted path (`fallbacks[0].then`) as a path into the document.
fn policy_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((key, index)) => {
                out.push(Key(key));
                if let Ok(i) = index.trim_end_matches(']').parse() {
                    out.push(Index(i));
                }
            }
            None => out.push(Key(part)),
        }
    }
    out
}

fn workload(loc: &Locator<'_>, w: &RawWorkload, workflow: bool) -> Result<Workload, FileError> {
    let at = |key| [Key("workload"), Key(key)];
    if workflow {
        let refused =
            [("mix", !w.mix.is_empty()), ("aggregate", w.aggregate.is_some()), ("affinity", w.affinity.is_some())];
        if let Some((key, _)) = refused.iter().find(|(_, set)| *set) {
            return Err(loc.hint(
                &at(key),
                format!("a workflow workload has no `{key}`"),
                "its steps name the tools; `arrivals` say how many runs start (`callers`: runs at once, `poisson`: runs per second)",
            ));
        }
    }
    let arrivals = match (w.arrivals.poisson, w.arrivals.callers) {
        (Some(rate), None) => {
            if !(rate > 0.0 && rate <= 100_000.0) {
                return Err(loc.at(
                    &[Key("workload"), Key("arrivals"), Key("poisson")],
                    "the rate must be in (0, 100000] per second",
                ));
            }
            Arrivals::Poisson(rate)
        }
        (None, Some(n)) => {
            if !(1..=1_024).contains(&n) {
                return Err(loc.at(&[Key("workload"), Key("arrivals"), Key("callers")], "callers must be in 1..=1024"));
            }
            Arrivals::Callers(n)
        }
        _ => {
            return Err(loc.hint(
                &at("arrivals"),
                "arrivals need exactly one of `poisson` and `callers`",
                "{ poisson = 200 } (calls per second) or { callers = 32 }",
            ));
        }
    };
    if w.mix.is_empty() && !workflow {
        return Err(loc.at(&at("mix"), "the mix names no tool"));
    }
    if w.mix.len() > MAX_LIST {
        return Err(loc.at(&at("mix"), format!("the mix names at most {MAX_LIST} tools")));
    }
    let mut mix = Vec::new();
    for (i, m) in w.mix.iter().enumerate() {
        let weight = m.weight.unwrap_or(1);
        if !(1..=MAX_MIX_WEIGHT).contains(&weight) {
            return Err(loc.at(
                &[Key("workload"), Key("mix"), Index(i), Key("weight")],
                format!("a weight is in 1..={MAX_MIX_WEIGHT}"),
            ));
        }
        mix.push((m.tool.clone(), weight));
    }
    let deadline = match &w.deadline {
        Some(d) => dur(loc, &at("deadline"), d)?,
        None => Duration::from_secs(5),
    };
    let aggregate = match &w.aggregate {
        None => None,
        Some(RawAggregate::Quorum { quorum }) => {
            if !(1..=MAX_FAN_OUT as u32).contains(quorum) {
                return Err(loc.at(
                    &[Key("workload"), Key("aggregate"), Key("quorum")],
                    format!("a quorum is in 1..={MAX_FAN_OUT} (the most replicas one call is sent to)"),
                ));
            }
            Some(Aggregation::Quorum(*quorum))
        }
        Some(RawAggregate::Named(name)) => match name.as_str() {
            "first" => Some(Aggregation::First),
            "fastest" => Some(Aggregation::Fastest),
            "all" => Some(Aggregation::All),
            "majority" => Some(Aggregation::Majority),
            other => {
                return Err(loc.hint(
                    &at("aggregate"),
                    format!("`{other}` is not an aggregation"),
                    "first, fastest, all, majority, or { quorum = k }",
                ));
            }
        },
    };
    let think = match (&w.arrivals.think, arrivals) {
        (None, _) => Duration::ZERO,
        (Some(t), Arrivals::Callers(_)) => {
            instant(t).map_err(|m| loc.at(&[Key("workload"), Key("arrivals"), Key("think")], m))?
        }
        (Some(_), Arrivals::Poisson(_)) => {
            return Err(loc.at(
                &[Key("workload"), Key("arrivals"), Key("think")],
                "`think` is the pause of closed-loop callers; open-loop arrivals have none",
            ));
        }
    };
    let affinity = match &w.affinity {
        None => None,
        Some(a) => {
            if !(1..=MAX_KEYS).contains(&a.keys) {
                return Err(loc.at(
                    &[Key("workload"), Key("affinity"), Key("keys")],
                    format!("the number of affinity keys is in 1..={MAX_KEYS}"),
                ));
            }
            if let Some(z) = a.zipf
                && !(z > 0.0 && z <= 10.0)
            {
                return Err(loc.at(
                    &[Key("workload"), Key("affinity"), Key("zipf")],
                    format!("{z} is not a Zipf exponent in (0, 10]"),
                ));
            }
            if aggregate.is_some() {
                return Err(loc.hint(
                    &[Key("workload"), Key("affinity")],
                    "an aggregated call goes to every replica: an affinity key would not be used",
                    "remove `affinity` or `aggregate`",
                ));
            }
            Some(Affinity { keys: a.keys, zipf: a.zipf })
        }
    };
    Ok(Workload { arrivals, mix, deadline, aggregate, think, affinity })
}

/// Every tool of the mix must be one the client will expose: the names come from the core's
/// catalog, built from the fleet with the policy's namespacing, fallbacks and route rules, as
/// the client builds it once connected.
fn check_mix(loc: &Locator<'_>, s: &Scenario) -> Result<(), FileError> {
    let servers: Vec<ServerTools> = s
        .servers()
        .into_iter()
        .enumerate()
        .map(|(i, (name, group))| {
            let mut t = ServerTools::new(ServerId(i as u32), &name, &[]).in_group(group.replica_set());
            t.priority = group.priority;
            t.tags = group.tags.iter().cloned().collect();
            t.tools = group
                .tools
                .iter()
                .map(|tool| ToolInfo {
                    name: tool.name.clone(),
                    hints: ToolHints { read_only: tool.read_only, idempotent: tool.idempotent },
                })
                .collect();
            t
        })
        .collect();
    let config = CatalogConfig { namespacing: s.policy.namespacing, fallbacks: s.policy.fallbacks.clone() };
    let catalog = Catalog::build(&servers, &config).map_err(|e| {
        loc.hint(&[Key("client"), Key("namespacing")], e.to_string(), "namespacing = \"always\" never collides")
    })?;
    let exposed: Vec<String> = catalog.entries().map(|e| e.exposed.clone()).collect();
    let hint = || {
        if exposed.len() <= 8 {
            format!("the client will expose {}", exposed.join(", "))
        } else {
            format!("with namespacing `{:?}`, names are like `{}`", s.policy.namespacing, exposed[0])
        }
    };
    if let Some(flow) = &s.workflow {
        for (i, step) in flow.0.workflow.steps().iter().enumerate() {
            let fallback = match &step.fallback {
                Some(gauntlet_core::workflow::Fallback::Call(c)) => Some(("fallback", &c.tool)),
                _ => None,
            };
            let calls =
                [Some(("tool", &step.call.tool)), fallback, step.compensate.as_ref().map(|c| ("compensate", &c.tool))];
            for (key, tool) in calls.into_iter().flatten() {
                if !exposed.contains(tool) {
                    return Err(loc.hint(
                        &[Key("workflow"), Key("step"), Index(i), Key(key)],
                        format!("no server exposes `{tool}`"),
                        hint(),
                    ));
                }
            }
        }
        return Ok(());
    }
    for (i, (tool, _)) in s.workload.mix.iter().enumerate() {
        if !exposed.contains(tool) {
            return Err(loc.hint(
                &[Key("workload"), Key("mix"), Index(i), Key("tool")],
                format!("no server exposes `{tool}`"),
                hint(),
            ));
        }
    }
    Ok(())
}

fn faults(loc: &Locator<'_>, raw: &[RawFault], s: &Scenario) -> Result<Vec<Fault>, FileError> {
    let mut out = Vec::new();
    for (i, f) in raw.iter().enumerate() {
        let at = |key| [Key("fault"), Index(i), Key(key)];
        let start = instant(&f.at).map_err(|m| loc.at(&at("at"), m))?;
        if start >= s.duration {
            return Err(loc.hint(
                &at("at"),
                format!("the fault starts at {start:?}, after the run ends ({:?})", s.duration),
                "move it before `duration`, or lengthen the run",
            ));
        }
        let needs = |key: &'static str| loc.at(&at("kind"), format!("a `{}` fault needs `{key}`", f.kind));
        let kind = match f.kind.as_str() {
            "partition" => FaultKind::Partition,
            "one-way" => FaultKind::OneWay,
            "hold" => FaultKind::Hold,
            "crash" | "restart" => FaultKind::Crash,
            "byzantine" => FaultKind::Byzantine,
            "latency" => {
                FaultKind::Latency(dur(loc, &at("latency"), f.latency.as_deref().ok_or_else(|| needs("latency"))?)?)
            }
            "loss" => FaultKind::Loss(rate(loc, &at("rate"), f.rate.ok_or_else(|| needs("rate"))?)?),
            "brownout" => FaultKind::Brownout(rate(loc, &at("rate"), f.rate.unwrap_or(1.0))?),
            "slow-tool" => {
                let tool = f.tool.clone().ok_or_else(|| needs("tool"))?;
                FaultKind::SlowTool(tool, dur(loc, &at("extra"), f.extra.as_deref().ok_or_else(|| needs("extra"))?)?)
            }
            "list-change" => {
                let tools = f.tools.as_ref().ok_or_else(|| needs("tools"))?;
                if tools.len() > MAX_LIST {
                    return Err(loc.at(&at("tools"), format!("at most {MAX_LIST} tools")));
                }
                FaultKind::ListChange(tools.iter().map(|t| SimTool::safe(t)).collect())
            }
            other => {
                return Err(loc.hint(
                    &at("kind"),
                    format!("`{other}` is not a fault kind"),
                    format!("one of {FAULT_KINDS}"),
                ));
            }
        };
        let lasts = match (&f.lasts, f.kind.as_str()) {
            (Some(d), _) => dur(loc, &at("for"), d)?,
            // A restart is a crash that comes back at once (the next tick).
            (None, "restart") => s.tick,
            (None, _) => return Err(needs("for")),
        };
        if let Some((_, fraction)) = f.target.split_once('@')
            && !fraction.parse::<f64>().is_ok_and(|x| x > 0.0 && x <= 1.0)
        {
            return Err(loc.at(&at("target"), format!("`{fraction}` is not a fraction in (0, 1]")));
        }
        if f.target == crate::world::CLIENT {
            // The client's host: only a crash reaches it, and only a workflow workload has a
            // journal to resume from.
            if kind != FaultKind::Crash {
                return Err(loc.at(&at("kind"), "the client's host can only `crash` (or `restart`)"));
            }
            if s.workflow.is_none() {
                return Err(loc.hint(
                    &at("target"),
                    "only a workflow workload survives a crash of the client's host",
                    "add a `[workflow]`: its runs resume from the journal after the restart",
                ));
            }
        }
        let targets = if f.target == crate::world::CLIENT { vec![f.target.clone()] } else { s.targets(&f.target) };
        if targets.is_empty() {
            let groups: Vec<&str> = s.fleet.iter().map(|g| g.group.as_str()).collect();
            return Err(loc.hint(
                &at("target"),
                format!("the target `{}` names no server", f.target),
                format!("a server (`{}-0`), a group ({}), or `group@fraction`", groups[0], groups.join(", ")),
            ));
        }
        if let FaultKind::SlowTool(tool, _) = &kind {
            let offered =
                s.servers().into_iter().any(|(n, g)| targets.contains(&n) && g.tools.iter().any(|t| t.name == *tool));
            if !offered {
                return Err(loc.at(&at("tool"), format!("no target offers `{tool}`")));
            }
        }
        let every = f.every.as_deref().map(|e| dur(loc, &at("every"), e)).transpose()?;
        if every.is_some_and(|e| e <= lasts) {
            return Err(
                loc.at(&at("every"), "a repeating fault must end before it starts again: `every` must exceed `for`")
            );
        }
        // Occurrences of a repeating fault, counted before any is made: a run holds at most
        // MAX_FAULTS of them in all.
        let occurrences = match every {
            None => 1,
            Some(e) => (s.duration - start).as_nanos().div_ceil(e.as_nanos().max(1)),
        };
        if occurrences.saturating_add(out.len() as u128) > MAX_FAULTS as u128 {
            return Err(loc.hint(
                &at(if every.is_some() { "every" } else { "kind" }),
                format!("the scenario's faults would start more than {MAX_FAULTS} times"),
                "repeat less often (`every`), or split the run",
            ));
        }
        let mut t = start;
        loop {
            out.push(Fault { at: t, duration: lasts, kind: kind.clone(), target: f.target.clone() });
            match every.and_then(|e| t.checked_add(e)) {
                Some(next) if next < s.duration => t = next,
                _ => break,
            }
        }
    }
    Ok(out)
}

fn phases(loc: &Locator<'_>, raw: &[RawPhase], duration: Duration) -> Result<Vec<PhaseSpec>, FileError> {
    if raw.len() > MAX_LIST {
        return Err(loc.at(&[Key("phase")], format!("at most {MAX_LIST} phases")));
    }
    let mut out: Vec<PhaseSpec> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let at = |key| [Key("phase"), Index(i), Key(key)];
        let parse = |key: &'static str, text: &str| instant(text).map_err(|m| loc.at(&at(key), m));
        let (from, to) = (parse("from", &p.from)?, parse("to", &p.to)?);
        if to <= from {
            return Err(loc.at(&at("to"), "a phase must end after it starts"));
        }
        if to > duration {
            return Err(loc.at(&at("to"), format!("the phase ends after the run ({duration:?})")));
        }
        if out.iter().any(|o| o.name == p.name) {
            return Err(loc.at(&at("name"), format!("the phase `{}` is defined twice", p.name)));
        }
        out.push(PhaseSpec { name: p.name.clone(), from, to });
    }
    Ok(out)
}

fn bounds<'a>(
    loc: &Locator<'_>,
    base: &[Seg<'_>],
    fields: impl IntoIterator<Item = (&'a str, &'a Option<String>)>,
) -> Result<Bounds, FileError> {
    let mut out = Vec::new();
    for (key, value) in fields {
        let Some(text) = value else { continue };
        let metric = Metric::parse(key).expect("the raw fields are metric names");
        let mut path = base.to_vec();
        path.push(Key(key));
        let bound = Bound::parse(text, metric.unit())
            .map_err(|m| loc.hint(&path, m, "write a bound like \">= 0.999\" or \"<= 250ms\""))?;
        out.push((metric, bound));
    }
    let b = Bounds(out);
    if let Some((metric, c)) = b.contradiction() {
        let name = metric.to_string();
        let mut path = base.to_vec();
        path.push(Key(&name));
        return Err(loc.at(&path, format!("contradictory expectations: {c}")));
    }
    Ok(b)
}

/// A served order's entries, checked: groups or servers of the fleet, none twice in a row.
fn order(loc: &Locator<'_>, base: &[Seg<'_>], names: &[String], s: &Scenario) -> Result<Vec<String>, FileError> {
    let mut path = base.to_vec();
    path.push(Key("order"));
    if names.is_empty() || names.len() > MAX_ORDER {
        return Err(loc.at(&path, format!("an order lists 1 to {MAX_ORDER} groups or servers")));
    }
    for (i, name) in names.iter().enumerate() {
        let mut at = path.clone();
        at.push(Index(i));
        let known = s.fleet.iter().any(|g| g.group == *name) || s.servers().iter().any(|(n, _)| n == name);
        if !known {
            let groups: Vec<&str> = s.fleet.iter().map(|g| g.group.as_str()).collect();
            return Err(loc.hint(
                &at,
                format!("`{name}` is not a group or a server of the fleet"),
                format!("the groups are {}", groups.join(", ")),
            ));
        }
        if i > 0 && names[i - 1] == *name {
            return Err(loc.hint(
                &at,
                format!("`{name}` follows itself"),
                "an order lists changes of who served: write each stretch once",
            ));
        }
    }
    Ok(names.to_vec())
}

fn expectations(
    loc: &Locator<'_>,
    e: &RawExpect,
    s: &Scenario,
    runs: &[String],
    hedging: bool,
) -> Result<Expectations, FileError> {
    expectations_at(loc, &[Key("expect")], e, s, runs, hedging)
}

/// The expectations of the table at `base` (`[expect]`, or `[expect.run.NAME]`).
fn expectations_at<'a>(
    loc: &Locator<'_>,
    base: &[Seg<'a>],
    e: &'a RawExpect,
    s: &Scenario,
    runs: &[String],
    hedging: bool,
) -> Result<Expectations, FileError> {
    let at = |rest: &[Seg<'a>]| -> Vec<Seg<'a>> {
        let mut p = base.to_vec();
        p.extend_from_slice(rest);
        p
    };
    let run = bounds(
        loc,
        base,
        [
            ("success_rate", &e.success_rate),
            ("correct_rate", &e.correct_rate),
            ("p50", &e.p50),
            ("p90", &e.p90),
            ("p99", &e.p99),
            ("p999", &e.p999),
            ("retry_amplification", &e.retry_amplification),
            ("recovery", &e.recovery),
            ("detection", &e.detection),
            ("hedge_rate", &e.hedge_rate),
        ],
    )?;
    if e.hedge_rate.is_some() && !hedging {
        return Err(loc.hint(
            &at(&[Key("hedge_rate")]),
            "no run of this file hedges: the hedge rate is always 0",
            "set `hedge` in `[client]` or in a `[[variant]]`",
        ));
    }
    let mut orders = Vec::new();
    if let Some(names) = &e.order {
        orders.push(Order { phase: None, names: order(loc, base, names, s)? });
    }
    if e.recovery.is_some() && s.faults.is_empty() {
        return Err(loc.at(&at(&[Key("recovery")]), "a recovery time is expected, but no fault heals"));
    }
    if e.detection.is_some() && s.faults.is_empty() {
        return Err(loc.at(&at(&[Key("detection")]), "a detection time is expected, but there is no fault"));
    }
    if let Some(lost) = e.lost
        && lost > 0
    {
        return Err(loc.hint(
            &at(&[Key("lost")]),
            "no call may be lost",
            "every call must end; the checker demands `lost = 0`",
        ));
    }
    let names: Vec<String> = s.phases().into_iter().map(|p| p.name).collect();
    let mut phases = Vec::new();
    let mut shares = Vec::new();
    for (name, p) in &e.phase {
        let path = at(&[Key("phase"), Key(name.as_str())]);
        if !names.contains(name) {
            return Err(loc.hint(
                &path,
                format!("there is no phase `{name}`"),
                format!("the phases are {}", names.join(", ")),
            ));
        }
        let b = bounds(
            loc,
            &path,
            [
                ("success_rate", &p.success_rate),
                ("correct_rate", &p.correct_rate),
                ("p50", &p.p50),
                ("p90", &p.p90),
                ("p99", &p.p99),
                ("p999", &p.p999),
                ("keys_moved", &p.keys_moved),
            ],
        )?;
        if p.keys_moved.is_some() {
            let path = at(&[Key("phase"), Key(name.as_str()), Key("keys_moved")]);
            if s.workload.affinity.is_none() {
                return Err(loc.hint(&path, "no call carries an affinity key", "set `workload.affinity`"));
            }
            if names.first() == Some(name) {
                return Err(loc.at(&path, "keys move from the first phase to a later one: the first has no moves"));
            }
        }
        phases.push((name.clone(), b));
        if let Some(names) = &p.order {
            orders.push(Order { phase: Some(name.clone()), names: order(loc, &path, names, s)? });
        }
        for (who, text) in &p.share {
            let path = at(&[Key("phase"), Key(name.as_str()), Key("share"), Key(who.as_str())]);
            let known = s.fleet.iter().any(|g| g.group == *who) || s.servers().iter().any(|(n, _)| n == who);
            if !known {
                let groups: Vec<&str> = s.fleet.iter().map(|g| g.group.as_str()).collect();
                return Err(loc.hint(
                    &path,
                    format!("`{who}` is not a group or a server of the fleet"),
                    format!("the groups are {}", groups.join(", ")),
                ));
            }
            let bound = Bound::parse(text, Unit::Rate)
                .map_err(|m| loc.hint(&path, m, "write a share like \">= 0.9\" (of the phase's correct answers)"))?;
            shares.push((name.clone(), who.clone(), bound));
        }
    }
    let mut compare = Vec::new();
    for (i, text) in e.compare.iter().enumerate() {
        let path = at(&[Key("compare"), Index(i)]);
        let c = Comparison::parse(text).map_err(|m| loc.hint(&path, m, format!("metrics: {METRICS}")))?;
        for side in [&c.left, &c.right] {
            if !runs.contains(side) {
                return Err(loc.hint(
                    &path,
                    format!("`{side}` is not in the matrix or a variant"),
                    format!("the file runs {}", runs.join(", ")),
                ));
            }
        }
        if c.left == c.right {
            return Err(loc.at(&path, "a comparison needs two runs"));
        }
        compare.push(c);
    }
    let servers_of_fleet: Vec<String> = s.servers().into_iter().map(|(n, _)| n).collect();
    let mut servers = Vec::new();
    for (name, b) in &e.server {
        let path = at(&[Key("server"), Key(name.as_str())]);
        if !servers_of_fleet.contains(name) {
            // At the table's first bound, not at its header.
            let first =
                [("breaker_opens", &b.breaker_opens), ("ejections", &b.ejections), ("load_share", &b.load_share)]
                    .into_iter()
                    .find_map(|(k, v)| v.as_ref().map(|_| k));
            let mut at = path.to_vec();
            at.extend(first.map(Key));
            return Err(loc.hint(
                &at,
                format!("there is no server `{name}`"),
                format!("the servers are {}", servers_of_fleet.join(", ")),
            ));
        }
        let bounds = bounds(
            loc,
            &path,
            [("breaker_opens", &b.breaker_opens), ("ejections", &b.ejections), ("load_share", &b.load_share)],
        )?;
        servers.push((name.clone(), bounds));
    }
    let mut only = Vec::new();
    for (name, sub) in &e.run {
        let path = at(&[Key("run"), Key(name.as_str())]);
        if base.len() > 1 {
            return Err(loc.at(&path, "`run` tables do not nest: write `[expect.run.NAME]` once"));
        }
        if !runs.contains(name) {
            return Err(loc.hint(
                &path,
                format!("`{name}` is not in the matrix or a variant"),
                format!("the file runs {}", runs.join(", ")),
            ));
        }
        if !sub.compare.is_empty() {
            return Err(loc.hint(
                &at(&[Key("run"), Key(name.as_str()), Key("compare")]),
                "comparisons name both runs already",
                "write them under `[expect]`",
            ));
        }
        only.push((name.clone(), expectations_at(loc, &path, sub, s, runs, hedging)?));
    }
    Ok(Expectations { run, phases, servers, shares, compare, orders, only })
}

//! Exploration: runs over generated fault schedules, findings grouped by signature, and each
//! finding shrunk to a small scenario that still fails the same way.
//!
//! An *envelope* is a scenario file with an `[explore]` table: its fleet, client policy,
//! workload and expectations are fixed; the faults of each run are drawn from the table's
//! ranges. Swarm testing: each run first enables a random non-empty subset of the allowed
//! kinds, so rare combinations get room. A run is a pure function of `(seed, run index)`: its
//! schedule is rendered as `[[fault]]` tables after the envelope's text, and that text is what
//! is parsed and run, so every schedule is a scenario file that `gauntlet run` replays.

use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_core::SeededRng;
use gauntlet_reports::RunResult;
use serde::Deserialize;

use crate::expect::{duration, instant};
use crate::file::{FileError, ScenarioFile};
use crate::scenario::{Sabotage, Scenario};

/// The most faults one generated run may have.
pub const MAX_FAULTS: u32 = 16;
/// The most runs one shrink may spend.
pub const SHRINK_BUDGET: u32 = 200;

/// The `[explore]` table as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExplore {
    faults: Option<[u32; 2]>,
    kinds: Option<Vec<String>>,
    targets: Option<Vec<String>>,
    at: Option<[String; 2]>,
    #[serde(rename = "for")]
    lasts: Option<[String; 2]>,
    latency: Option<[String; 2]>,
    rate: Option<[f64; 2]>,
}

/// A fault kind the explorer generates (those that need no tool name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `partition`.
    Partition,
    /// `one-way`.
    OneWay,
    /// `hold`.
    Hold,
    /// `crash`.
    Crash,
    /// `latency`, with a latency from the range.
    Latency,
    /// `loss`, with a rate from the range.
    Loss,
    /// `brownout`, with a rate from the range.
    Brownout,
    /// `byzantine`.
    Byzantine,
}

impl Kind {
    /// Every kind, in order.
    pub const ALL: [Kind; 8] = [
        Kind::Partition,
        Kind::OneWay,
        Kind::Hold,
        Kind::Crash,
        Kind::Latency,
        Kind::Loss,
        Kind::Brownout,
        Kind::Byzantine,
    ];

    /// As scenario files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Partition => "partition",
            Kind::OneWay => "one-way",
            Kind::Hold => "hold",
            Kind::Crash => "crash",
            Kind::Latency => "latency",
            Kind::Loss => "loss",
            Kind::Brownout => "brownout",
            Kind::Byzantine => "byzantine",
        }
    }
}

/// A checked `[explore]` table: the ranges faults are drawn from. Durations in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Generator {
    /// How many faults a run has, inclusive.
    pub faults: (u32, u32),
    /// The kinds allowed.
    pub kinds: Vec<Kind>,
    /// The targets faults are drawn from (servers or groups).
    pub targets: Vec<String>,
    /// When a fault starts.
    pub at_ms: (u64, u64),
    /// How long it lasts.
    pub for_ms: (u64, u64),
    /// A latency fault's added latency.
    pub latency_ms: (u64, u64),
    /// A loss or brownout fault's rate, in thousandths.
    pub rate_permille: (u32, u32),
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn range(
    key: &'static str,
    raw: &Option<[String; 2]>,
    default: (u64, u64),
) -> Result<(u64, u64), (&'static str, String)> {
    let Some([lo, hi]) = raw else { return Ok(default) };
    let parse = |t: &str| if key == "at" { instant(t) } else { duration(t) };
    let lo = ms(parse(lo).map_err(|m| (key, m))?);
    let hi = ms(parse(hi).map_err(|m| (key, m))?);
    if lo > hi {
        return Err((key, format!("the range is empty: {lo} ms > {hi} ms")));
    }
    Ok((lo, hi))
}

impl Generator {
    /// Checks `raw` against the scenario it explores: every name known, every range in the
    /// run, and every fault over `recovery_bound` before the run ends (so recovery is measured).
    pub fn check(raw: &RawExplore, scenario: &Scenario) -> Result<Generator, (&'static str, String)> {
        let faults = match raw.faults {
            None => (1, 3),
            Some([lo, hi]) if lo <= hi && (1..=MAX_FAULTS).contains(&hi) => (lo, hi),
            Some([lo, hi]) => {
                return Err((
                    "faults",
                    format!("[{lo}, {hi}] is not a range in [0, {MAX_FAULTS}] with at least one fault"),
                ));
            }
        };
        let kinds = match &raw.kinds {
            None => Kind::ALL.to_vec(),
            Some(names) => {
                let mut kinds = Vec::new();
                for n in names {
                    let Some(k) = Kind::ALL.iter().find(|k| k.name() == n) else {
                        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                        return Err((
                            "kinds",
                            format!("`{n}` is not a kind the explorer draws: one of {}", all.join(", ")),
                        ));
                    };
                    if !kinds.contains(k) {
                        kinds.push(*k);
                    }
                }
                if kinds.is_empty() {
                    return Err(("kinds", "no kind allowed".to_owned()));
                }
                kinds.sort();
                kinds
            }
        };
        let targets = match &raw.targets {
            None => scenario.servers().into_iter().map(|(name, _)| name).collect(),
            Some(t) => t.clone(),
        };
        if targets.is_empty() || targets.len() > crate::file::MAX_LIST {
            return Err(("targets", format!("1 to {} targets", crate::file::MAX_LIST)));
        }
        if let Some(t) = targets.iter().find(|t| scenario.targets(t).is_empty()) {
            return Err(("targets", format!("`{t}` names no server")));
        }
        let end = ms(scenario.duration).saturating_sub(ms(scenario.recovery_bound));
        let for_ms = range("for", &raw.lasts, (100, 2_000.min(end / 4).max(1)))?;
        if for_ms.0 == 0 {
            return Err(("for", "a fault lasts at least 1ms".to_owned()));
        }
        let must_end = |at: u64| {
            format!(
                "a fault starting at {at} ms and lasting {} ms ends after {end} ms: faults must end `recovery_bound` \
                 ({} ms) before the run ends, so recovery is measured",
                for_ms.1,
                ms(scenario.recovery_bound)
            )
        };
        if for_ms.1 > end {
            return Err(("for", must_end(0)));
        }
        let latest = end - for_ms.1;
        let at_ms = range("at", &raw.at, (0, latest))?;
        if at_ms.1 > latest {
            return Err(("at", must_end(at_ms.1)));
        }
        let latency_ms = range("latency", &raw.latency, (20, 500))?;
        let rate_permille = match raw.rate {
            None => (100, 900),
            Some([lo, hi]) if (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) && lo <= hi => {
                ((lo * 1e3).round() as u32, (hi * 1e3).round() as u32)
            }
            Some([lo, hi]) => return Err(("rate", format!("[{lo}, {hi}] is not a range in [0, 1]"))),
        };
        Ok(Generator { faults, kinds, targets, at_ms, for_ms, latency_ms, rate_permille })
    }

    /// Run `run`'s unguided schedule under `seed`: a pure function of the two.
    pub fn schedule(&self, seed: u64, run: u64) -> Vec<Planned> {
        self.schedule_with(seed, run, &Guide::default())
    }

    /// Run `run`'s schedule under `seed` and `guide`: a pure function of the three. With an
    /// empty guide, each allowed kind is enabled with probability 1/2 and each fault's kind is
    /// drawn evenly from the enabled; with weights, a kind is enabled with probability
    /// `w / (w + mean w)` and drawn in proportion to `w`.
    pub fn schedule_with(&self, seed: u64, run: u64, guide: &Guide) -> Vec<Planned> {
        let mut rng = SeededRng::new(seed).derive(run);
        let draw = |rng: &mut SeededRng, (lo, hi): (u64, u64)| lo + rng.next_u64() % (hi - lo + 1);
        let weight = |k: Kind| guide.weights.iter().find(|(g, _)| *g == k).map_or(1, |&(_, w)| w.max(1));
        let mean = if guide.weights.is_empty() {
            1
        } else {
            (self.kinds.iter().map(|&k| u64::from(weight(k))).sum::<u64>() / self.kinds.len() as u64).max(1) as u32
        };
        // Swarm: a random non-empty subset of the allowed kinds.
        let mut enabled: Vec<Kind> = self
            .kinds
            .iter()
            .copied()
            .filter(|&k| {
                let w = weight(k);
                rng.below(w.saturating_add(mean)) < w
            })
            .collect();
        if enabled.is_empty() {
            enabled.push(self.kinds[rng.below(self.kinds.len() as u32) as usize]);
        }
        let total: u32 = enabled.iter().map(|&k| weight(k)).fold(0u32, u32::saturating_add);
        let n = draw(&mut rng, (u64::from(self.faults.0), u64::from(self.faults.1)));
        (0..n)
            .map(|_| {
                let kind = if guide.weights.is_empty() {
                    enabled[rng.below(enabled.len() as u32) as usize]
                } else {
                    let mut at = rng.below(total);
                    *enabled
                        .iter()
                        .find(|&&k| {
                            let w = weight(k);
                            if at < w {
                                return true;
                            }
                            at -= w;
                            false
                        })
                        .unwrap_or(&enabled[0])
                };
                let target = self.targets[rng.below(self.targets.len() as u32) as usize].clone();
                let for_ms = draw(&mut rng, self.for_ms);
                let at_ms = draw(&mut rng, self.at_ms);
                let latency_ms = draw(&mut rng, self.latency_ms);
                let rate = draw(&mut rng, (u64::from(self.rate_permille.0), u64::from(self.rate_permille.1)));
                Planned { kind, target, at_ms, for_ms, latency_ms, rate_permille: rate as u32 }
            })
            .collect()
    }
}

/// One generated fault.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Planned {
    /// What it does.
    pub kind: Kind,
    /// Its target.
    pub target: String,
    /// When it starts.
    pub at_ms: u64,
    /// How long it lasts.
    pub for_ms: u64,
    /// For `latency`: the added latency.
    pub latency_ms: u64,
    /// For `loss` and `brownout`: the rate, in thousandths.
    pub rate_permille: u32,
}

impl Planned {
    fn toml(&self) -> String {
        let mut t = format!(
            "[[fault]]\nat = \"{}ms\"\nfor = \"{}ms\"\nkind = \"{}\"\ntarget = \"{}\"\n",
            self.at_ms,
            self.for_ms,
            self.kind.name(),
            self.target
        );
        match self.kind {
            Kind::Latency => t.push_str(&format!("latency = \"{}ms\"\n", self.latency_ms)),
            Kind::Loss | Kind::Brownout => t.push_str(&format!("rate = {}\n", f64::from(self.rate_permille) / 1e3)),
            _ => {}
        }
        t
    }
}

/// Runs per batch of a guided exploration: the guide changes only between batches, so a run's
/// schedule depends on the runs of earlier batches, never on `--jobs`.
pub const GUIDE_BATCH: usize = 64;

/// Weights that steer generation toward fault kinds whose (kind, client state) pairs are not
/// reached yet. Empty: unguided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guide {
    /// Per allowed kind, its weight (at least 1).
    pub weights: Vec<(Kind, u32)>,
}

impl Guide {
    /// The guide after `found`: a kind weighs `1 + 16 u / (1 + r / 64)`, where `u` is the
    /// number of [`STATES`] not reached with it and `r` the runs that had it, so a kind with
    /// pairs left is drawn more, and less as runs with it keep not reaching them (some pairs
    /// cannot be reached: the default outlier settings never eject among fewer than 5 servers).
    pub fn after(generator: &Generator, found: &Exploration) -> Guide {
        let weights = generator
            .kinds
            .iter()
            .map(|&k| {
                let unreached =
                    STATES.iter().filter(|s| !found.coverage.contains_key(&(k.name().to_owned(), **s))).count() as u64;
                let runs = found.runs_with_kind.get(k.name()).copied().unwrap_or(0);
                let w = 1 + 16 * unreached / (1 + runs / GUIDE_BATCH as u64);
                (k, u32::try_from(w).unwrap_or(u32::MAX))
            })
            .collect();
        Guide { weights }
    }
}

/// An envelope, checked: the scenario text without its `[explore]` table, and the generator.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The file, as given.
    pub file: String,
    /// The envelope's document without the `[explore]` table, comments and layout kept.
    base: toml_edit::DocumentMut,
    /// The scenario as the envelope writes it.
    pub scenario: ScenarioFile,
    /// The fault generator.
    pub generator: Generator,
    /// A deliberately broken client for every run (`--sabotage`), written into each file.
    pub sabotage: Option<Sabotage>,
}

impl Envelope {
    /// Parses and checks an envelope (its `[explore]` table in any TOML form).
    pub fn parse(file: &str, text: &str) -> Result<Envelope, FileError> {
        let (scenario, generator) = crate::file::parse_envelope(file, text)?;
        let mut base: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| FileError {
            file: file.to_owned(),
            line: 1,
            col: 1,
            message: e.message().to_owned(),
            hint: None,
        })?;
        base.remove("explore");
        let envelope = Envelope { file: file.to_owned(), base, scenario, generator, sabotage: None };
        // The generated text must be a scenario file: check with a fault of every kind.
        let probe: Vec<Planned> = envelope
            .generator
            .kinds
            .iter()
            .map(|&kind| Planned {
                kind,
                target: envelope.generator.targets[0].clone(),
                at_ms: envelope.generator.at_ms.0,
                for_ms: envelope.generator.for_ms.0,
                latency_ms: envelope.generator.latency_ms.0,
                rate_permille: envelope.generator.rate_permille.0,
            })
            .collect();
        if let Err(e) = envelope.file_for(&probe, "probe") {
            return Err(FileError {
                message: format!("the envelope cannot take generated faults: {}", e.message),
                hint: Some("write the envelope's own faults, if any, as `[[fault]]` tables".to_owned()),
                ..e
            });
        }
        Ok(envelope)
    }

    /// The scenario file of a schedule: the envelope's text, a comment, the faults.
    pub fn render(&self, schedule: &[Planned], note: &str) -> String {
        self.render_scaled(schedule, &Scale::default(), note)
    }

    /// As [`render`](Self::render), with the envelope's duration, load and fleet scaled down.
    pub fn render_scaled(&self, schedule: &[Planned], scale: &Scale, note: &str) -> String {
        use toml_edit::value;
        let mut doc = self.base.clone();
        if let Some(s) = self.sabotage {
            doc.insert("sabotage", value(s.name()));
            if let Some(mut key) = doc.key_mut("sabotage") {
                key.leaf_decor_mut()
                    .set_prefix("# A deliberately broken client: this file checks that it is caught.\n");
            }
        }
        if let Some(d) = scale.duration_ms {
            let d = if d % 1_000 == 0 { format!("{}s", d / 1_000) } else { format!("{d}ms") };
            doc.insert("duration", value(d));
        }
        // The envelope parsed, so these tables exist; a key that is not one is left alone.
        let arrivals = doc
            .get_mut("workload")
            .and_then(|w| w.as_table_like_mut())
            .and_then(|w| w.get_mut("arrivals"))
            .and_then(|a| a.as_table_like_mut());
        match (scale.load, arrivals) {
            (Some(Load::Poisson(rate)), Some(a)) => {
                a.insert("poisson", value(rate));
            }
            (Some(Load::Callers(n)), Some(a)) => {
                a.insert("callers", value(i64::from(n)));
            }
            _ => {}
        }
        for (&i, &count) in &scale.counts {
            if let Some(group) =
                doc.get_mut("fleet").and_then(|f| f.as_array_of_tables_mut()).and_then(|f| f.get_mut(i))
            {
                group.insert("count", value(i64::from(count)));
            }
        }
        let mut text = doc.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
        for line in note.lines() {
            text.push_str(&format!("# {line}\n"));
        }
        for f in schedule {
            text.push('\n');
            text.push_str(&f.toml());
        }
        text
    }

    /// A schedule's scenario, parsed as `gauntlet run` would parse its file.
    pub fn file_for(&self, schedule: &[Planned], note: &str) -> Result<ScenarioFile, FileError> {
        crate::file::parse(&self.file, &self.render(schedule, note))
    }

    /// The run's load as the envelope writes it.
    pub fn load(&self) -> Load {
        match self.scenario.scenario.workload.arrivals {
            crate::scenario::Arrivals::Poisson(rate) => Load::Poisson(rate),
            crate::scenario::Arrivals::Callers(n) => Load::Callers(n),
        }
    }

    /// Runs a scaled schedule on the envelope's first seed and every variant; the signatures
    /// of what failed.
    pub fn run_scaled(&self, schedule: &[Planned], scale: &Scale) -> Result<Vec<String>, FileError> {
        let f = crate::file::parse(&self.file, &self.render_scaled(schedule, scale, ""))?;
        let seed = f.seeds.first().copied().unwrap_or(f.scenario.seed);
        Ok(f.run_seed(seed, &f.variants).iter().flat_map(signatures).collect())
    }

    /// Runs a schedule on the envelope's first seed and every variant; the signatures of what
    /// failed.
    pub fn run(&self, schedule: &[Planned]) -> Result<Vec<String>, FileError> {
        Ok(self.run_results(schedule)?.iter().flat_map(signatures).collect())
    }

    /// Runs a schedule on the envelope's first seed and every variant.
    pub fn run_results(&self, schedule: &[Planned]) -> Result<Vec<RunResult>, FileError> {
        let f = self.file_for(schedule, "")?;
        let seed = f.seeds.first().copied().unwrap_or(f.scenario.seed);
        Ok(f.run_seed(seed, &f.variants))
    }
}

/// What failed in one run, each as `what@variant`: a safety or liveness violation by its kind,
/// a failed expectation by its name. Sorted, without repeats.
pub fn signatures(run: &RunResult) -> Vec<String> {
    let mut out: Vec<String> = run
        .violations
        .iter()
        .map(|v| {
            let kind = serde_json::to_value(v)
                .ok()
                .and_then(|j| j.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "violation".to_owned());
            format!("{kind}@{}", run.variant)
        })
        .chain(run.expectations.iter().filter(|e| !e.pass).map(|e| format!("expect {}@{}", e.name, run.variant)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The client states coverage looks for while a fault is active on a server.
pub const STATES: [&str; 5] = ["breaker-open", "breaker-half-open", "ejected", "disconnected", "failover"];

/// The (fault kind, client state) pairs a run reached: a state of the client towards a server
/// (its breaker opened or went half-open, it was ejected, its session ended, a call failed over
/// from it) while a fault of that kind was active on that server. From the run's event
/// timeline (a run whose timeline was cut short reports what it kept).
pub fn coverage(run: &RunResult) -> std::collections::BTreeSet<(String, &'static str)> {
    use gauntlet_core::breaker::Phase;
    use gauntlet_reports::What;
    let mut active: BTreeMap<&str, BTreeMap<&str, u32>> = BTreeMap::new();
    let mut reached = std::collections::BTreeSet::new();
    for e in &run.events {
        let state = match &e.what {
            What::FaultStart { fault } => {
                *active.entry(&e.server).or_default().entry(fault).or_insert(0) += 1;
                continue;
            }
            What::FaultEnd { fault } => {
                if let Some(n) = active.get_mut(e.server.as_str()).and_then(|m| m.get_mut(fault.as_str())) {
                    *n = n.saturating_sub(1);
                }
                continue;
            }
            What::Breaker { to: Phase::Open, .. } => STATES[0],
            What::Breaker { to: Phase::HalfOpen, .. } => STATES[1],
            What::Ejected => STATES[2],
            What::Disconnected => STATES[3],
            What::Failover { .. } => STATES[4],
            _ => continue,
        };
        for (kind, n) in active.get(e.server.as_str()).into_iter().flatten() {
            if *n > 0 {
                reached.insert(((*kind).to_owned(), state));
            }
        }
    }
    reached
}

/// One bug, as the runs that showed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// What failed.
    pub signature: String,
    /// Runs that showed it.
    pub count: u64,
    /// The first run (lowest index) that showed it.
    pub first_run: u64,
    /// That run's schedule.
    pub schedule: Vec<Planned>,
}

/// What an exploration found.
#[derive(Clone, Debug, PartialEq)]
pub struct Exploration {
    /// The runs made (indices `runs`).
    pub runs: u64,
    /// Runs with no finding.
    pub clean: u64,
    /// By signature.
    pub findings: BTreeMap<String, Finding>,
    /// Per fault kind: runs whose schedule has a fault of it.
    pub runs_with_kind: BTreeMap<&'static str, u64>,
    /// Per (fault kind, client state) pair: runs that reached it (see [`coverage`]).
    pub coverage: BTreeMap<(String, &'static str), u64>,
    /// Pairs reached after the first 1, 10, 100, … runs (and after all of them).
    pub growth: Vec<(u64, usize)>,
}

/// How an exploration runs.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// The generator's seed.
    pub seed: u64,
    /// Runs at once. The result does not depend on it.
    pub jobs: usize,
    /// Steer generation toward pairs not reached yet ([`Guide`]), batch by batch.
    pub guided: bool,
    /// Asked after each batch: `true` stops (the CLI's `--time`, on the wall clock, which this
    /// crate never reads). How many runs that is depends on the machine; what they find is what
    /// as many `--runs` find.
    pub stop: Option<&'a (dyn Fn() -> bool + Sync)>,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("seed", &self.seed)
            .field("jobs", &self.jobs)
            .field("guided", &self.guided)
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

/// Per run: its kinds, its signatures, the pairs it reached, and its schedule only if it
/// failed (a million clean runs keep no schedule).
type Outcome = (Vec<Kind>, Vec<String>, Vec<(String, &'static str)>, Vec<Planned>);

/// Runs `schedules` on `jobs` threads; the outcomes in their order.
fn run_all(envelope: &Envelope, schedules: &[Vec<Planned>], jobs: usize) -> Result<Vec<Outcome>, FileError> {
    crate::parallel::map_ordered(schedules, jobs, |schedule| {
        envelope.run_results(schedule).map(|runs| {
            let sigs: Vec<String> = runs.iter().flat_map(signatures).collect();
            let pairs = runs.iter().flat_map(coverage).collect::<std::collections::BTreeSet<_>>();
            let mut kinds: Vec<Kind> = schedule.iter().map(|p| p.kind).collect();
            kinds.sort();
            kinds.dedup();
            let kept = if sigs.is_empty() { Vec::new() } else { schedule.clone() };
            (kinds, sigs, pairs.into_iter().collect(), kept)
        })
    })
    .into_iter()
    .collect()
}

/// The guide for the next batch after `found`: none for the first batch (so the first
/// [`GUIDE_BATCH`] runs are the unguided ones) or when not guided.
fn guide_after(envelope: &Envelope, found: &Exploration, guided: bool) -> Guide {
    if guided && found.runs > 0 { Guide::after(&envelope.generator, found) } else { Guide::default() }
}

/// Explores run indices `indices` of `envelope`, in batches of [`GUIDE_BATCH`] (the guide is
/// renewed between batches, and `stop` is asked there). The result does not depend on
/// `jobs`.
pub fn explore(envelope: &Envelope, indices: &[u64], options: Options<'_>) -> Result<Exploration, FileError> {
    let mut found = Exploration {
        runs: 0,
        clean: 0,
        findings: BTreeMap::new(),
        runs_with_kind: BTreeMap::new(),
        coverage: BTreeMap::new(),
        growth: Vec::new(),
    };
    let mut next_mark = 1u64;
    for batch in indices.chunks(GUIDE_BATCH) {
        // At least one batch, however short the time.
        if found.runs > 0 && options.stop.is_some_and(|stop| stop()) {
            break;
        }
        let guide = guide_after(envelope, &found, options.guided);
        let schedules: Vec<Vec<Planned>> =
            batch.iter().map(|&run| envelope.generator.schedule_with(options.seed, run, &guide)).collect();
        for (&run, (kinds, sigs, pairs, schedule)) in batch.iter().zip(run_all(envelope, &schedules, options.jobs)?) {
            found.runs += 1;
            for pair in pairs {
                *found.coverage.entry(pair).or_insert(0) += 1;
            }
            if found.runs == next_mark {
                found.growth.push((found.runs, found.coverage.len()));
                next_mark = next_mark.saturating_mul(10);
            }
            found.clean += u64::from(sigs.is_empty());
            for k in kinds {
                *found.runs_with_kind.entry(k.name()).or_insert(0) += 1;
            }
            for s in sigs {
                let f = found.findings.entry(s.clone()).or_insert_with(|| Finding {
                    signature: s,
                    count: 0,
                    first_run: run,
                    schedule: schedule.clone(),
                });
                f.count += 1;
            }
        }
    }
    if found.growth.last().is_none_or(|(runs, _)| *runs != found.runs) {
        found.growth.push((found.runs, found.coverage.len()));
    }
    Ok(found)
}

/// The schedule of `indices[position]` in an exploration of `indices` with `options`: guided,
/// it reruns the batches before the run's to rebuild the guide.
pub fn schedule_at(
    envelope: &Envelope,
    indices: &[u64],
    position: usize,
    options: Options<'_>,
) -> Result<Option<Vec<Planned>>, FileError> {
    let Some(&run) = indices.get(position) else { return Ok(None) };
    let guide = if options.guided && position >= GUIDE_BATCH {
        let before = position / GUIDE_BATCH * GUIDE_BATCH;
        let found = explore(envelope, &indices[..before], Options { stop: None, ..options })?;
        guide_after(envelope, &found, true)
    } else {
        Guide::default()
    };
    Ok(Some(envelope.generator.schedule_with(options.seed, run, &guide)))
}

/// A run's load: Poisson arrivals per second or closed-loop callers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// `arrivals = { poisson = RATE }`.
    Poisson(f64),
    /// `arrivals = { callers = N }`.
    Callers(u32),
}

/// What shrinking took off the envelope besides faults. Empty: the envelope as written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scale {
    /// A shorter run.
    pub duration_ms: Option<u64>,
    /// A lower load.
    pub load: Option<Load>,
    /// Fewer servers in a `[[fleet]]` entry, by its index.
    pub counts: BTreeMap<usize, u32>,
}

impl Scale {
    /// What the scale changed from `envelope`, for a file's comment (empty when nothing).
    pub fn describe(&self, envelope: &Envelope) -> Vec<String> {
        let s = &envelope.scenario.scenario;
        let mut out = Vec::new();
        if let Some(d) = self.duration_ms {
            out.push(format!("duration {} ms -> {d} ms", ms(s.duration)));
        }
        match (self.load, envelope.load()) {
            (Some(Load::Poisson(to)), Load::Poisson(from)) => out.push(format!("load {from}/s -> {to}/s")),
            (Some(Load::Callers(to)), Load::Callers(from)) => out.push(format!("callers {from} -> {to}")),
            _ => {}
        }
        for (&i, &to) in &self.counts {
            if let Some(g) = s.fleet.get(i) {
                out.push(format!("group {} {} -> {to} server(s)", g.group, g.count));
            }
        }
        out
    }
}

/// A shrunk finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk {
    /// The smallest schedule found that still fails with the signature.
    pub schedule: Vec<Planned>,
    /// The duration, load and fleet it fails with.
    pub scale: Scale,
    /// Runs spent.
    pub runs: u32,
}

/// Shrinks `schedule` while it keeps failing with `signature` (greedy delta debugging, at most
/// [`SHRINK_BUDGET`] runs, the first to confirm it): drop faults, shorten them, move them earlier, lower their
/// intensity; then shorten the run (never below its last fault's end plus `recovery_bound`, so
/// recovery is still measured), halve the load and take servers out of the fleet; each until
/// no step helps. A candidate that is not a valid file (a fault on a server taken out, an
/// expectation past the end) is skipped. A local minimum; deterministic.
pub fn shrink(envelope: &Envelope, schedule: &[Planned], signature: &str) -> Result<Shrunk, FileError> {
    let mut best = Shrunk { schedule: schedule.to_vec(), scale: Scale::default(), runs: 0 };
    let original = envelope.run(schedule)?;
    if !original.iter().any(|s| s == signature) {
        // Not this schedule's failure (a caller's mistake): nothing to shrink.
        return Ok(best);
    }
    best.runs = 1;
    // A candidate keeps the failure and adds none: taking the fleet down to one server may
    // fail the same way and, besides, not recover; that is another finding, not this one.
    let fails = |schedule: &[Planned], scale: &Scale, runs: &mut u32| -> bool {
        if *runs >= SHRINK_BUDGET {
            return false;
        }
        *runs += 1;
        match envelope.run_scaled(schedule, scale) {
            Ok(sigs) => sigs.iter().any(|s| s == signature) && sigs.iter().all(|s| original.contains(s)),
            Err(_) => {
                // Not a valid file: no run was made.
                *runs -= 1;
                false
            }
        }
    };
    let recovery = ms(envelope.scenario.scenario.recovery_bound);
    loop {
        let mut changed = false;
        // Drop one fault at a time.
        let mut i = 0;
        while i < best.schedule.len() && best.schedule.len() > 1 {
            let mut candidate = best.schedule.clone();
            candidate.remove(i);
            if fails(&candidate, &best.scale, &mut best.runs) {
                best.schedule = candidate;
                changed = true;
            } else {
                i += 1;
            }
        }
        // Halve lengths, starts and intensities.
        for i in 0..best.schedule.len() {
            let steps: [fn(&mut Planned) -> bool; 4] = [
                |p| halve(&mut p.for_ms, 1),
                |p| halve(&mut p.at_ms, 0),
                |p| p.kind == Kind::Latency && halve(&mut p.latency_ms, 1),
                |p| matches!(p.kind, Kind::Loss | Kind::Brownout) && halve_u32(&mut p.rate_permille),
            ];
            for step in steps {
                let mut candidate = best.schedule.clone();
                if step(&mut candidate[i]) && fails(&candidate, &best.scale, &mut best.runs) {
                    best.schedule = candidate;
                    changed = true;
                }
            }
        }
        // A shorter run: halfway to the shortest that still measures recovery.
        let last_end = best.schedule.iter().map(|p| p.at_ms.saturating_add(p.for_ms)).max().unwrap_or(0);
        let floor = last_end.saturating_add(recovery).div_ceil(100).saturating_mul(100);
        let now = best.scale.duration_ms.unwrap_or(ms(envelope.scenario.scenario.duration));
        if now > floor {
            let mid = floor + (now - floor) / 2;
            let to = if now - floor <= 100 { floor } else { mid.div_ceil(100) * 100 };
            let scale = Scale { duration_ms: Some(to), ..best.scale.clone() };
            if to < now && fails(&best.schedule, &scale, &mut best.runs) {
                best.scale = scale;
                changed = true;
            }
        }
        // Half the load.
        let lower = match best.scale.load.unwrap_or(envelope.load()) {
            Load::Poisson(rate) if rate >= 2.0 => Some(Load::Poisson((rate / 2.0).floor())),
            Load::Callers(n) if n >= 2 => Some(Load::Callers(n / 2)),
            _ => None,
        };
        if let Some(load) = lower {
            let scale = Scale { load: Some(load), ..best.scale.clone() };
            if fails(&best.schedule, &scale, &mut best.runs) {
                best.scale = scale;
                changed = true;
            }
        }
        // One server fewer in a group (the last of its names goes).
        for (i, group) in envelope.scenario.scenario.fleet.iter().enumerate() {
            let count = best.scale.counts.get(&i).copied().unwrap_or(group.count);
            if count > 1 {
                let mut scale = best.scale.clone();
                scale.counts.insert(i, count - 1);
                if fails(&best.schedule, &scale, &mut best.runs) {
                    best.scale = scale;
                    changed = true;
                }
            }
        }
        if !changed || best.runs >= SHRINK_BUDGET {
            break;
        }
    }
    Ok(best)
}

fn halve(v: &mut u64, floor: u64) -> bool {
    let half = (*v / 2).max(floor);
    let changed = half < *v;
    *v = half;
    changed
}

fn halve_u32(v: &mut u32) -> bool {
    let half = *v / 2;
    let changed = half < *v && half > 0;
    if changed {
        *v = half;
    }
    changed
}

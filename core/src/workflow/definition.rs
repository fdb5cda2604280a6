//! A workflow's definition: steps, their dependencies, conditions, fallbacks and compensations;
//! checked once into a [`Workflow`] whose steps form a DAG.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::expr::{Condition, Path, Root, SyntaxError, Template, Test};

/// The most steps a workflow may have.
pub const MAX_STEPS: usize = 10_000;
/// The longest step name.
pub const MAX_NAME: usize = 64;
/// The most steps of one workflow running at once.
pub const MAX_PARALLEL: u32 = 1_024;
/// The default bound on a workflow's steps running at once.
pub const DEFAULT_PARALLEL: u32 = 16;
/// The most extra attempts a step may ask for.
pub const MAX_RETRIES: u32 = 10;
/// The longest deadline a step may have.
pub const MAX_DEADLINE: Duration = Duration::from_secs(3_600);

/// A tool call: an exposed tool and its arguments (a template).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallSpec {
    /// The exposed tool name.
    pub tool: String,
    /// The arguments: a JSON object, with references (see [`super::expr`]).
    pub args: Value,
}

/// What a step does when its call fails.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackSpec {
    /// Call this instead.
    Call(CallSpec),
    /// Take this value as the step's result.
    Value(Value),
}

/// A condition as written: the path and exactly one test.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenSpec {
    /// The value at the path equals this.
    Equals(String, Value),
    /// The value at the path is missing or differs from this.
    NotEquals(String, Value),
    /// The value at the path exists (not `null`).
    Exists(String),
    /// The value at the path is missing or `null`.
    Missing(String),
}

/// One step as written (by the TOML reader or the [`Builder`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepSpec {
    /// Its name: letters, digits, `_` and `-`, at most [`MAX_NAME`] bytes.
    pub name: String,
    /// Its call.
    pub call: CallSpec,
    /// Steps it runs after, besides those its arguments and condition read.
    pub after: Vec<String>,
    /// It runs only if this holds (else it is skipped).
    pub when: Option<WhenSpec>,
    /// What to do when its call fails.
    pub fallback: Option<FallbackSpec>,
    /// Its call's deadline (`None`: the client's).
    pub deadline: Option<Duration>,
    /// Extra attempts after the client gave up, for steps the client may replay.
    pub retries: u32,
    /// Its undo action, run if the workflow fails after it succeeded.
    pub compensate: Option<CallSpec>,
}

impl StepSpec {
    /// A step calling `tool` with `args`, with no dependency beyond what `args` reads.
    pub fn call(name: &str, tool: &str, args: Value) -> StepSpec {
        StepSpec {
            name: name.to_owned(),
            call: CallSpec { tool: tool.to_owned(), args },
            after: Vec::new(),
            when: None,
            fallback: None,
            deadline: None,
            retries: 0,
            compensate: None,
        }
    }

    /// Runs after these steps too.
    pub fn after<'a>(mut self, steps: impl IntoIterator<Item = &'a str>) -> StepSpec {
        self.after.extend(steps.into_iter().map(str::to_owned));
        self
    }

    /// Runs only when `when` holds.
    pub fn when(mut self, when: WhenSpec) -> StepSpec {
        self.when = Some(when);
        self
    }

    /// Falls back to this when its call fails.
    pub fn fallback(mut self, fallback: FallbackSpec) -> StepSpec {
        self.fallback = Some(fallback);
        self
    }

    /// Undoes itself with this call if the workflow fails after it.
    pub fn compensate(mut self, tool: &str, args: Value) -> StepSpec {
        self.compensate = Some(CallSpec { tool: tool.to_owned(), args });
        self
    }

    /// Its call's deadline.
    pub fn deadline(mut self, deadline: Duration) -> StepSpec {
        self.deadline = Some(deadline);
        self
    }

    /// Extra attempts for a replayable step.
    pub fn retries(mut self, retries: u32) -> StepSpec {
        self.retries = retries;
        self
    }
}

/// A workflow as written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spec {
    /// Its name.
    pub name: String,
    /// Its steps, in the order written.
    pub steps: Vec<StepSpec>,
    /// Its result: a template over the inputs and the steps' results (`None`: every step's
    /// result by name).
    pub output: Option<Value>,
    /// At most this many of its steps run at once.
    pub max_parallel: u32,
}

/// Builds a [`Workflow`] in Rust: `Builder::new("name").step(…).build()`.
#[derive(Clone, Debug)]
pub struct Builder(Spec);

impl Builder {
    /// An empty workflow named `name`, [`DEFAULT_PARALLEL`] steps at once.
    pub fn new(name: &str) -> Builder {
        Builder(Spec { name: name.to_owned(), steps: Vec::new(), output: None, max_parallel: DEFAULT_PARALLEL })
    }

    /// Adds a step.
    pub fn step(mut self, step: StepSpec) -> Builder {
        self.0.steps.push(step);
        self
    }

    /// Sets the workflow's result.
    pub fn output(mut self, output: Value) -> Builder {
        self.0.output = Some(output);
        self
    }

    /// Bounds the steps running at once.
    pub fn max_parallel(mut self, n: u32) -> Builder {
        self.0.max_parallel = n;
        self
    }

    /// The definition as written so far.
    pub fn into_spec(self) -> Spec {
        self.0
    }

    /// Checks the workflow.
    pub fn build(self) -> Result<Workflow, DefinitionError> {
        Workflow::new(self.0)
    }
}

/// A checked call: the tool and its parsed arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The exposed tool.
    pub tool: String,
    /// The arguments' template.
    pub args: Template,
}

/// A checked fallback.
#[derive(Clone, Debug, PartialEq)]
pub enum Fallback {
    /// Call this instead.
    Call(Call),
    /// Take this value.
    Value(Value),
}

/// A checked step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Its name.
    pub name: String,
    /// Its call.
    pub call: Call,
    /// Its condition.
    pub when: Option<Condition>,
    /// Its fallback.
    pub fallback: Option<Fallback>,
    /// Its deadline.
    pub deadline: Option<Duration>,
    /// Extra attempts for a replayable step.
    pub retries: u32,
    /// Its compensation.
    pub compensate: Option<Call>,
}

/// Why a definition is not a workflow. Steps are named as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// No step.
    #[error("a workflow needs at least one step")]
    Empty,
    /// More than [`MAX_STEPS`].
    #[error("{0} steps; at most {MAX_STEPS}")]
    TooManySteps(usize),
    /// A name with characters outside letters, digits, `_` and `-`, empty or too long.
    #[error("step name `{0}`: use 1 to {MAX_NAME} letters, digits, `_` or `-`")]
    BadName(String),
    /// Two steps with one name.
    #[error("two steps are named `{0}`")]
    Duplicate(String),
    /// A reference to a step that does not exist.
    #[error("step `{step}` refers to `{missing}`, which is not a step")]
    UnknownStep {
        /// The referring step (or `output`).
        step: String,
        /// The name it refers to.
        missing: String,
    },
    /// A step that reads its own result.
    #[error("step `{0}` reads its own result (only its compensation may)")]
    SelfReference(String),
    /// Dependencies that form a cycle; `blocked` are the steps that wait on it.
    #[error("the steps form a cycle: {} (steps that can never run: {})", cycle.join(" → "), if blocked.is_empty() { "none".to_owned() } else { blocked.join(", ") })]
    Cycle {
        /// The cycle, each step depending on the next, the last on the first.
        cycle: Vec<String>,
        /// Every other step that can never run because it waits on the cycle.
        blocked: Vec<String>,
    },
    /// A template that does not parse.
    #[error("step `{step}`, {field}: {error}")]
    Syntax {
        /// The step (or `output`).
        step: String,
        /// The field (`args`, `when`, `fallback`, `compensate`).
        field: &'static str,
        /// What is wrong.
        error: SyntaxError,
    },
    /// A value out of its range.
    #[error("step `{step}`: {message}")]
    Range {
        /// The step (or the workflow's name).
        step: String,
        /// What is out of range.
        message: String,
    },
    /// `max_parallel` out of range.
    #[error("max_parallel is {0}; use 1 to {MAX_PARALLEL}")]
    Parallel(u32),
}

/// A checked workflow: its steps form a DAG, every reference resolves.
#[derive(Clone, Debug)]
pub struct Workflow {
    name: String,
    steps: Vec<Step>,
    output: Option<Template>,
    max_parallel: u32,
    /// Each step's dependencies (sorted, distinct).
    deps: Vec<Vec<u32>>,
    /// Each step's dependents (sorted, distinct).
    dependents: Vec<Vec<u32>>,
    /// Step indices in a topological order.
    order: Vec<u32>,
    digest: u64,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Workflow {
    /// Checks `spec`.
    pub fn new(spec: Spec) -> Result<Workflow, DefinitionError> {
        let n = spec.steps.len();
        if n == 0 {
            return Err(DefinitionError::Empty);
        }
        if n > MAX_STEPS {
            return Err(DefinitionError::TooManySteps(n));
        }
        if spec.max_parallel == 0 || spec.max_parallel > MAX_PARALLEL {
            return Err(DefinitionError::Parallel(spec.max_parallel));
        }
        let digest = digest_of(&spec);
        let Spec { name: workflow_name, steps: specs, output, max_parallel } = spec;
        // Names apart from the rest, so the rest can be taken apart while names are looked up.
        let mut names = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        for s in specs {
            let StepSpec { name, call, after, when, fallback, deadline, retries, compensate } = s;
            names.push(name);
            bodies.push((call, after, when, fallback, deadline, retries, compensate));
        }
        let index = Index::new(&names)?;
        let resolve = |t: &mut Template, step: &str, deps: &mut Vec<u32>| -> Result<(), DefinitionError> {
            let mut error = None;
            t.paths_mut(&mut |p| resolve_path(p, step, &index, deps, &mut error));
            error.map_or(Ok(()), Err)
        };
        let parse = |v: Value, step: &str, field: &'static str| {
            Template::parse(v).map_err(|error| DefinitionError::Syntax { step: step.to_owned(), field, error })
        };
        let mut steps = Vec::with_capacity(n);
        let mut deps: Vec<Vec<u32>> = Vec::with_capacity(n);
        for (i, (call, after, when, fallback, deadline, retries, compensate)) in bodies.into_iter().enumerate() {
            let name = names[i].as_str();
            let mut d = Vec::new();
            for a in &after {
                let j = index
                    .get(a.as_str())
                    .ok_or_else(|| DefinitionError::UnknownStep { step: name.to_owned(), missing: a.clone() })?;
                d.push(j);
            }
            let mut args = parse(call.args, name, "args")?;
            resolve(&mut args, name, &mut d)?;
            let when = match when {
                None => None,
                Some(w) => {
                    let (path, test) = match w {
                        WhenSpec::Equals(p, v) => (p, Test::Equals(v)),
                        WhenSpec::NotEquals(p, v) => (p, Test::NotEquals(v)),
                        WhenSpec::Exists(p) => (p, Test::Exists),
                        WhenSpec::Missing(p) => (p, Test::Missing),
                    };
                    let mut path = Path::parse(&path).map_err(|error| DefinitionError::Syntax {
                        step: name.to_owned(),
                        field: "when",
                        error,
                    })?;
                    let mut error = None;
                    resolve_path(&mut path, name, &index, &mut d, &mut error);
                    if let Some(e) = error {
                        return Err(e);
                    }
                    Some(Condition { path, test })
                }
            };
            let fallback = match fallback {
                None => None,
                Some(FallbackSpec::Value(v)) => Some(Fallback::Value(v)),
                Some(FallbackSpec::Call(c)) => {
                    let mut args = parse(c.args, name, "fallback")?;
                    resolve(&mut args, name, &mut d)?;
                    Some(Fallback::Call(Call { tool: c.tool, args }))
                }
            };
            if d.contains(&(i as u32)) {
                return Err(DefinitionError::SelfReference(name.to_owned()));
            }
            let compensate = match compensate {
                None => None,
                Some(c) => {
                    let mut args = parse(c.args, name, "compensate")?;
                    // A compensation runs after its step; it may read its step and its step's
                    // dependencies, never a step that might not have run.
                    let mut reads = Vec::new();
                    resolve(&mut args, name, &mut reads)?;
                    for r in reads {
                        if r != i as u32 && !d.contains(&r) {
                            return Err(DefinitionError::Range {
                                step: name.to_owned(),
                                message: format!(
                                    "its compensation reads `{}`, which is not one of its dependencies",
                                    names[r as usize]
                                ),
                            });
                        }
                    }
                    Some(Call { tool: c.tool, args })
                }
            };
            if retries > MAX_RETRIES {
                return Err(DefinitionError::Range {
                    step: name.to_owned(),
                    message: format!("retries is {retries}; at most {MAX_RETRIES}"),
                });
            }
            if let Some(dl) = deadline
                && (dl.is_zero() || dl > MAX_DEADLINE)
            {
                return Err(DefinitionError::Range {
                    step: name.to_owned(),
                    message: format!("deadline must be above 0 and at most {}s", MAX_DEADLINE.as_secs()),
                });
            }
            d.sort_unstable();
            d.dedup();
            deps.push(d);
            steps.push(Step {
                // Moved in from `names` once every lookup is done.
                name: String::new(),
                call: Call { tool: call.tool, args },
                when,
                fallback,
                deadline,
                retries,
                compensate,
            });
        }
        let output = match output {
            None => None,
            Some(v) => {
                let mut t = parse(v, "output", "output")?;
                let mut ignored = Vec::new();
                resolve(&mut t, "output", &mut ignored)?;
                Some(t)
            }
        };
        drop(index);
        let mut dependents: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                dependents[j as usize].push(i as u32);
            }
        }
        let order = topological(&deps, &dependents).map_err(|remaining| cycle_error(&names, &deps, &remaining))?;
        for (step, name) in steps.iter_mut().zip(names) {
            step.name = name;
        }
        Ok(Workflow { name: workflow_name, steps, output, max_parallel, deps, dependents, order, digest })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its steps, in the order written.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Step `i`'s dependencies.
    pub fn deps(&self, i: usize) -> &[u32] {
        &self.deps[i]
    }

    /// The steps that depend on step `i`.
    pub fn dependents(&self, i: usize) -> &[u32] {
        &self.dependents[i]
    }

    /// The steps in a topological order.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// At most this many steps run at once.
    pub fn max_parallel(&self) -> u32 {
        self.max_parallel
    }

    /// Its result's template.
    pub fn output(&self) -> Option<&Template> {
        self.output.as_ref()
    }

    /// A hash of the definition as written: a journal refuses to resume under another.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The index of the step named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }
}

/// Step names, to look a step up by name: (hash of the name, index) pairs sorted, searched by
/// hash and confirmed by comparing the name. Comparing integers instead of strings makes this
/// several times faster than a tree of names, and it has no order of its own to leak.
struct Index<'a> {
    names: &'a [String],
    sorted: Vec<(u64, u32)>,
}

impl<'a> Index<'a> {
    /// Indexes `names`, refusing (as it comes first in the order written) a bad name or a name
    /// that repeats an earlier one.
    fn new(names: &'a [String]) -> Result<Index<'a>, DefinitionError> {
        let bad = names.iter().position(|n| !valid_name(n));
        let mut sorted: Vec<(u64, u32)> =
            names.iter().enumerate().map(|(i, n)| (xxhash_rust::xxh3::xxh3_64(n.as_bytes()), i as u32)).collect();
        sorted.sort_unstable();
        // Of names with one hash (in the order written), the first equal to an earlier one is
        // that run's first repeat; a run of one name repeated stops at its second entry.
        let mut repeat: Option<usize> = None;
        for run in sorted.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
            let first =
                (1..run.len()).find(|&k| run[..k].iter().any(|&(_, j)| names[j as usize] == names[run[k].1 as usize]));
            if let Some(k) = first {
                let i = run[k].1 as usize;
                repeat = Some(repeat.map_or(i, |r| r.min(i)));
            }
        }
        match (bad, repeat) {
            (Some(b), r) if r.is_none_or(|r| b < r) => Err(DefinitionError::BadName(names[b].clone())),
            (_, Some(r)) => Err(DefinitionError::Duplicate(names[r].clone())),
            _ => Ok(Index { names, sorted }),
        }
    }

    fn get(&self, name: &str) -> Option<u32> {
        let hash = xxhash_rust::xxh3::xxh3_64(name.as_bytes());
        let from = self.sorted.partition_point(|&(h, _)| h < hash);
        self.sorted[from..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .find(|&&(_, i)| self.names[i as usize] == name)
            .map(|&(_, i)| i)
    }
}

fn resolve_path(p: &mut Path, step: &str, index: &Index<'_>, deps: &mut Vec<u32>, error: &mut Option<DefinitionError>) {
    if let Root::Named(name) = &p.root {
        match index.get(name.as_str()) {
            Some(j) => {
                deps.push(j);
                p.root = Root::Step(j as usize);
            }
            None => {
                if error.is_none() {
                    *error = Some(DefinitionError::UnknownStep { step: step.to_owned(), missing: name.clone() });
                }
            }
        }
    }
}

/// A hash of the definition as written: every field, as typed values in a fixed encoding
/// (little-endian integers, length-prefixed strings and lists, a tag per variant), so it stays
/// the same across builds, platforms and Rust versions. Not its JSON: escaping every string
/// cost a quarter of checking a large definition.
fn digest_of(spec: &Spec) -> u64 {
    let Spec { name, steps, output, max_parallel } = spec;
    // Sized for a typical step, so the buffer seldom grows (and is copied) on the way.
    let mut e = Encoder(Vec::with_capacity(steps.len().saturating_mul(128).saturating_add(64)));
    e.str(name);
    e.u64(u64::from(*max_parallel));
    e.option(output.as_ref(), Encoder::value);
    e.len(steps.len());
    for step in steps {
        let StepSpec { name, call, after, when, fallback, deadline, retries, compensate } = step;
        e.str(name);
        e.call(call);
        e.len(after.len());
        after.iter().for_each(|a| e.str(a));
        e.option(when.as_ref(), |e, w| match w {
            WhenSpec::Equals(p, v) => {
                e.tag(0);
                e.str(p);
                e.value(v);
            }
            WhenSpec::NotEquals(p, v) => {
                e.tag(1);
                e.str(p);
                e.value(v);
            }
            WhenSpec::Exists(p) => {
                e.tag(2);
                e.str(p);
            }
            WhenSpec::Missing(p) => {
                e.tag(3);
                e.str(p);
            }
        });
        e.option(fallback.as_ref(), |e, f| match f {
            FallbackSpec::Call(c) => {
                e.tag(0);
                e.call(c);
            }
            FallbackSpec::Value(v) => {
                e.tag(1);
                e.value(v);
            }
        });
        e.option(deadline.as_ref(), |e, d| {
            e.u64(d.as_secs());
            e.u64(u64::from(d.subsec_nanos()));
        });
        e.u64(u64::from(*retries));
        e.option(compensate.as_ref(), Encoder::call);
    }
    xxhash_rust::xxh3::xxh3_64(&e.0)
}

/// The digest's encoding.
struct Encoder(Vec<u8>);

impl Encoder {
    fn tag(&mut self, tag: u8) {
        self.0.push(tag);
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn option<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Encoder, T)) {
        match v {
            None => self.tag(0),
            Some(v) => {
                self.tag(1);
                f(self, v);
            }
        }
    }

    fn call(&mut self, c: &CallSpec) {
        let CallSpec { tool, args } = c;
        self.str(tool);
        self.value(args);
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.tag(0),
            Value::Bool(b) => self.tag(if *b { 2 } else { 1 }),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    self.tag(3);
                    self.u64(u);
                } else if let Some(i) = n.as_i64() {
                    self.tag(4);
                    self.u64(i as u64);
                } else {
                    self.tag(5);
                    self.u64(n.as_f64().unwrap_or(f64::NAN).to_bits());
                }
            }
            Value::String(s) => {
                self.tag(6);
                self.str(s);
            }
            Value::Array(items) => {
                self.tag(7);
                self.len(items.len());
                items.iter().for_each(|i| self.value(i));
            }
            Value::Object(fields) => {
                // In the map's order: by key (or as written, should a build turn on
                // serde_json's `preserve_order`).
                self.tag(8);
                self.len(fields.len());
                for (k, v) in fields {
                    self.str(k);
                    self.value(v);
                }
            }
        }
    }
}

/// Kahn's algorithm: a topological order, or the steps left when no step is ready (a cycle and
/// the steps behind it).
fn topological(deps: &[Vec<u32>], dependents: &[Vec<u32>]) -> Result<Vec<u32>, Vec<u32>> {
    let n = deps.len();
    let mut waiting: Vec<u32> = deps.iter().map(|d| d.len() as u32).collect();
    let mut order: Vec<u32> = (0..n as u32).filter(|&i| waiting[i as usize] == 0).collect();
    let mut head = 0;
    while head < order.len() {
        let i = order[head] as usize;
        head += 1;
        for &j in &dependents[i] {
            waiting[j as usize] -= 1;
            if waiting[j as usize] == 0 {
                order.push(j);
            }
        }
    }
    if order.len() == n { Ok(order) } else { Err((0..n as u32).filter(|&i| waiting[i as usize] > 0).collect()) }
}

/// Names a cycle among `remaining` (every one of them waits on another of them), and the rest.
fn cycle_error(names: &[String], deps: &[Vec<u32>], remaining: &[u32]) -> DefinitionError {
    let left: std::collections::BTreeSet<u32> = remaining.iter().copied().collect();
    // Walk from the first remaining step through remaining dependencies until a step repeats.
    let mut seen = vec![usize::MAX; deps.len()];
    let mut path = Vec::new();
    let mut at = remaining[0];
    while seen[at as usize] == usize::MAX {
        seen[at as usize] = path.len();
        path.push(at);
        at = *deps[at as usize].iter().find(|d| left.contains(d)).expect("a waiting step waits on a waiting step");
    }
    let cycle: Vec<u32> = path[seen[at as usize]..].to_vec();
    let name = |i: &u32| names[*i as usize].clone();
    DefinitionError::Cycle {
        cycle: cycle.iter().map(name).collect(),
        blocked: remaining.iter().filter(|i| !cycle.contains(i)).map(name).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(name: &str, after: &[&str]) -> StepSpec {
        StepSpec::call(name, "t", json!({})).after(after.iter().copied())
    }

    #[test]
    fn a_reference_to_a_step_is_a_dependency() {
        let w = Builder::new("w")
            .step(StepSpec::call("a", "t", json!({})))
            .step(StepSpec::call("b", "t", json!({"x": "${steps.a.text}"})))
            .build()
            .expect("valid");
        assert_eq!(w.deps(1), &[0]);
        assert_eq!(w.order(), &[0, 1]);
    }

    #[test]
    fn a_cycle_is_named_with_the_steps_it_blocks() {
        let e = Builder::new("w")
            .step(step("a", &[]))
            .step(step("b", &["a", "d"]))
            .step(step("c", &["b"]))
            .step(step("d", &["c"]))
            .step(step("e", &["d"]))
            .build()
            .expect_err("cyclic");
        let DefinitionError::Cycle { mut cycle, blocked } = e else { panic!("{e:?}") };
        cycle.sort();
        assert_eq!(cycle, ["b", "c", "d"]);
        assert_eq!(blocked, ["e"]);
    }

    #[test]
    fn unknown_steps_duplicates_and_self_references_are_refused() {
        let e = Builder::new("w").step(step("a", &["zz"])).build();
        assert_eq!(e.err(), Some(DefinitionError::UnknownStep { step: "a".into(), missing: "zz".into() }));
        let e = Builder::new("w").step(step("a", &[])).step(step("a", &[])).build();
        assert_eq!(e.err(), Some(DefinitionError::Duplicate("a".into())));
        let e = Builder::new("w").step(StepSpec::call("a", "t", json!({"x": "${steps.a.text}"}))).build();
        assert_eq!(e.err(), Some(DefinitionError::SelfReference("a".into())));
        let e = Builder::new("w").step(step("a b", &[])).build();
        assert_eq!(e.err(), Some(DefinitionError::BadName("a b".into())));
    }

    #[test]
    fn the_first_bad_or_repeated_name_in_the_order_written_is_the_one_reported() {
        let build = |names: &[&str]| names.iter().fold(Builder::new("w"), |b, n| b.step(step(n, &[]))).build().err();
        assert_eq!(build(&["b", "a", "b", "a"]), Some(DefinitionError::Duplicate("b".into())));
        assert_eq!(build(&["z", "a", "a", "z"]), Some(DefinitionError::Duplicate("a".into())));
        assert_eq!(build(&["a", "x y", "a"]), Some(DefinitionError::BadName("x y".into())));
        assert_eq!(build(&["a", "a", "x y"]), Some(DefinitionError::Duplicate("a".into())));
    }

    #[test]
    fn a_compensation_may_read_its_own_step_but_not_a_later_one() {
        let ok = Builder::new("w")
            .step(StepSpec::call("a", "t", json!({})).compensate("undo", json!({"id": "${steps.a.text}"})))
            .build();
        assert!(ok.is_ok());
        let bad = Builder::new("w")
            .step(StepSpec::call("a", "t", json!({})).compensate("undo", json!({"id": "${steps.b.text}"})))
            .step(step("b", &["a"]))
            .build();
        assert!(matches!(bad, Err(DefinitionError::Range { .. })));
    }

    #[test]
    fn the_digest_follows_the_definition() {
        let a = Builder::new("w").step(step("a", &[])).build().expect("valid");
        let b = Builder::new("w").step(step("b", &[])).build().expect("valid");
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), Builder::new("w").step(step("a", &[])).build().expect("valid").digest());
    }
}

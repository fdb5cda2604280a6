//! Workflow files: TOML, checked at the edge into a `Workflow` and its inputs. The same table is
//! a standalone flow file (`gauntlet flow run FLOW.toml`) and a scenario's `[workflow]`. Every
//! error is `file:line:col: message`. The format is documented in `docs/workflows.md`.

use std::time::Duration;

use gauntlet_core::workflow::definition::{CallSpec, FallbackSpec, Spec, StepSpec, WhenSpec};
use gauntlet_core::workflow::{DEFAULT_PARALLEL, DefinitionError, Workflow};
use serde::Deserialize;
use serde_json::Value;

use crate::file::{FileError, Index, Key, Locator, Seg, dur};

/// A workflow as a file writes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFlow {
    name: Option<String>,
    description: Option<String>,
    max_parallel: Option<u32>,
    #[serde(default)]
    inputs: serde_json::Map<String, Value>,
    output: Option<Value>,
    #[serde(default)]
    step: Vec<RawStep>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    tool: String,
    #[serde(default)]
    args: serde_json::Map<String, Value>,
    #[serde(default)]
    after: Vec<String>,
    when: Option<RawWhen>,
    fallback: Option<RawFallback>,
    deadline: Option<String>,
    retries: Option<u32>,
    compensate: Option<RawCall>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    path: String,
    equals: Option<Value>,
    not_equals: Option<Value>,
    exists: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCall {
    tool: String,
    #[serde(default)]
    args: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    tool: Option<String>,
    args: Option<serde_json::Map<String, Value>>,
    value: Option<Value>,
}

/// A checked workflow and the inputs its file gives.
#[derive(Clone, Debug)]
pub struct FlowFile {
    /// The workflow.
    pub workflow: Workflow,
    /// Its inputs (the file's `[inputs]`).
    pub inputs: Value,
    /// What it does, if the file says.
    pub description: Option<String>,
}

/// Parses a standalone flow file.
pub fn parse_flow(file: &str, text: &str) -> Result<FlowFile, FileError> {
    let loc = Locator::new(file, text);
    let raw: RawFlow = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().replace('\n', " ");
        let hint = message.contains("unknown field").then(|| "see docs/workflows.md for every key".to_owned());
        loc.error_at(offset, message, hint)
    })?;
    check_flow(&loc, &[], &raw, None)
}

/// Checks a raw workflow found at `prefix` (`[]` for a flow file, `["workflow"]` in a scenario).
pub(crate) fn check_flow(
    loc: &Locator<'_>,
    prefix: &[Seg<'_>],
    raw: &RawFlow,
    default_name: Option<&str>,
) -> Result<FlowFile, FileError> {
    let at = |path: &[Seg<'static>]| join(prefix, path);
    let name = match (&raw.name, default_name) {
        (Some(n), _) => n.clone(),
        (None, Some(d)) => d.to_owned(),
        (None, None) => return Err(loc.at(&at(&[]), "a workflow needs a `name`")),
    };
    let mut steps = Vec::with_capacity(raw.step.len());
    for (i, s) in raw.step.iter().enumerate() {
        let here = |key: &'static str| at(&[Key("step"), Index(i), Key(key)]);
        let mut spec = StepSpec::call(&s.name, &s.tool, Value::Object(s.args.clone()));
        spec.after.clone_from(&s.after);
        spec.when = match &s.when {
            None => None,
            Some(w) => Some(match (&w.equals, &w.not_equals, w.exists) {
                (Some(v), None, None) => WhenSpec::Equals(w.path.clone(), v.clone()),
                (None, Some(v), None) => WhenSpec::NotEquals(w.path.clone(), v.clone()),
                (None, None, Some(true)) => WhenSpec::Exists(w.path.clone()),
                (None, None, Some(false)) => WhenSpec::Missing(w.path.clone()),
                _ => {
                    return Err(loc.hint(
                        &here("when"),
                        "a condition has exactly one test",
                        "write `equals = …`, `not_equals = …` or `exists = true|false` beside `path`",
                    ));
                }
            }),
        };
        spec.fallback = match &s.fallback {
            None => None,
            Some(f) => Some(match (&f.tool, &f.value) {
                (Some(tool), None) => FallbackSpec::Call(CallSpec {
                    tool: tool.clone(),
                    args: Value::Object(f.args.clone().unwrap_or_default()),
                }),
                (None, Some(v)) if f.args.is_none() => FallbackSpec::Value(v.clone()),
                _ => {
                    return Err(loc.hint(
                        &here("fallback"),
                        "a fallback is a call or a value",
                        "write `{ tool = \"…\", args = {…} }` or `{ value = … }`",
                    ));
                }
            }),
        };
        spec.deadline = match &s.deadline {
            None => None,
            Some(d) => Some(dur(loc, &here("deadline"), d)?),
        };
        spec.retries = s.retries.unwrap_or(0);
        spec.compensate =
            s.compensate.as_ref().map(|c| CallSpec { tool: c.tool.clone(), args: Value::Object(c.args.clone()) });
        steps.push(spec);
    }
    let spec =
        Spec { name, steps, output: raw.output.clone(), max_parallel: raw.max_parallel.unwrap_or(DEFAULT_PARALLEL) };
    let workflow = Workflow::new(spec).map_err(|e| {
        let step_at = |name: &str| raw.step.iter().position(|s| s.name == name);
        let path: Vec<Seg<'_>> = match &e {
            DefinitionError::Empty => at(&[]),
            DefinitionError::TooManySteps(_) => at(&[Key("step")]),
            DefinitionError::Parallel(_) => at(&[Key("max_parallel")]),
            DefinitionError::Syntax { step, field, .. } if step == "output" && *field == "output" => {
                at(&[Key("output")])
            }
            DefinitionError::UnknownStep { step, .. } if step == "output" => at(&[Key("output")]),
            DefinitionError::BadName(n)
            | DefinitionError::Duplicate(n)
            | DefinitionError::SelfReference(n)
            | DefinitionError::UnknownStep { step: n, .. }
            | DefinitionError::Syntax { step: n, .. }
            | DefinitionError::Range { step: n, .. } => {
                // A duplicate is pointed at its second occurrence.
                let i = match &e {
                    DefinitionError::Duplicate(_) => raw.step.iter().rposition(|s| &s.name == n),
                    _ => step_at(n),
                };
                i.map_or_else(|| at(&[]), |i| at(&[Key("step"), Index(i), Key("name")]))
            }
            DefinitionError::Cycle { cycle, .. } => cycle
                .first()
                .and_then(|n| step_at(n))
                .map_or_else(|| at(&[]), |i| at(&[Key("step"), Index(i), Key("name")])),
        };
        loc.at(&path, e.to_string())
    })?;
    Ok(FlowFile { workflow, inputs: Value::Object(raw.inputs.clone()), description: raw.description.clone() })
}

fn join<'a>(prefix: &[Seg<'a>], path: &[Seg<'a>]) -> Vec<Seg<'a>> {
    prefix.iter().chain(path).copied().collect()
}

/// The longest deadline a file may give a step (the definition's limit).
pub const MAX_STEP_DEADLINE: Duration = gauntlet_core::workflow::definition::MAX_DEADLINE;

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> FileError {
        parse_flow("f.toml", text).expect_err("invalid")
    }

    #[test]
    fn a_cycle_is_pointed_at_and_named() {
        let e = error(
            "name = \"w\"\n[[step]]\nname = \"a\"\ntool = \"t\"\nafter = [\"b\"]\n[[step]]\nname = \"b\"\ntool = \"t\"\nafter = [\"a\"]\n",
        );
        assert_eq!((e.line, e.col), (3, 8));
        assert!(e.message.contains("a → b"), "{}", e.message);
    }

    #[test]
    fn an_unknown_step_and_an_unknown_key_have_positions() {
        let e = error("name = \"w\"\n[[step]]\nname = \"a\"\ntool = \"t\"\nargs = { x = \"${steps.zz.text}\" }\n");
        assert_eq!(e.line, 3);
        let e = error("name = \"w\"\n[[step]]\nname = \"a\"\ntool = \"t\"\nretry = 2\n");
        assert_eq!(e.line, 5);
        assert!(e.hint.is_some());
    }

    #[test]
    fn a_condition_with_two_tests_is_refused() {
        let e = error(
            "name = \"w\"\n[[step]]\nname = \"a\"\ntool = \"t\"\nwhen = { path = \"input.x\", equals = 1, exists = true }\n",
        );
        assert_eq!((e.line, e.col), (5, 8));
    }

    #[test]
    fn a_valid_file_keeps_its_inputs_and_steps() {
        let f = parse_flow(
            "f.toml",
            "name = \"w\"\nmax_parallel = 2\n[inputs]\nuser = \"ada\"\n[[step]]\nname = \"a\"\ntool = \"t\"\nargs = { u = \"${input.user}\" }\ndeadline = \"2s\"\nfallback = { value = { text = \"x\" } }\ncompensate = { tool = \"undo\", args = { id = \"${steps.a.text}\" } }\n",
        )
        .expect("valid");
        assert_eq!(f.inputs, serde_json::json!({"user": "ada"}));
        assert_eq!(f.workflow.max_parallel(), 2);
        assert_eq!(f.workflow.steps()[0].deadline, Some(Duration::from_secs(2)));
    }

    /// The fields serde lists for an unknown key at `text`'s position.
    fn fields(text: &str) -> Vec<String> {
        let message = error(text).message;
        let list = message.split_once("expected one of ").map_or("", |(_, l)| l);
        list.split(", ").map(|f| f.trim_matches('`').to_owned()).collect()
    }

    #[test]
    fn every_key_of_the_format_is_documented_and_every_documented_key_exists() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/workflows.md"))
            .expect("docs/workflows.md");
        // The rows of the key table, which starts at its header and ends at the first blank line.
        let table = doc.split("| key | default | what it does |").nth(1).expect("the key table");
        let mut have: Vec<String> = table
            .lines()
            .skip(2)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| Some(l.strip_prefix("| `")?.split('`').next()?.to_owned()))
            .collect();
        have.sort();
        let top = fields("zz = 1\n");
        let step = fields("name = \"w\"\n[[step]]\nname = \"a\"\ntool = \"t\"\nzz = 1\n");
        let mut want: Vec<String> = top.into_iter().chain(step.iter().map(|k| format!("step.{k}"))).collect();
        want.sort();
        assert_eq!(have, want, "docs/workflows.md's key table and the format");
    }
}

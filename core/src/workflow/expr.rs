//! The expression language of workflow arguments and conditions: paths into JSON, and literals.
//!
//! A template is any JSON value. In it, a string that is exactly `${PATH}` becomes the value at
//! `PATH` (of any JSON type); `${PATH}` inside a longer string is replaced by that value's text
//! (a string as it is, anything else as compact JSON); `$${` writes a literal `${`. Nothing else is
//! evaluated: there are no operators, calls or loops, so a definition cannot compute without
//! bound.
//!
//! A path starts at `input` (the workflow's inputs) or `steps.NAME` (that step's result), then
//! names object keys with `.key` and array elements with `[N]`:
//! `steps.search.structuredContent.hits[0].id`, `input.user`. A step's result is the tool's
//! MCP result (`content`, `structuredContent`, `isError`) plus `text`, its first text block. A
//! skipped step's result is `null`.

use std::fmt;

use serde_json::Value;

/// The most segments a path may have.
pub const MAX_SEGMENTS: usize = 32;
/// How deep a template may nest.
pub const MAX_DEPTH: usize = 64;
/// The most `${…}` references in one template.
pub const MAX_REFS: usize = 1_024;

/// Where a path starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// The workflow's inputs.
    Input,
    /// A step's result, by the step's index in its workflow (names are resolved when the
    /// workflow is built).
    Step(usize),
    /// A step named in the text, not yet resolved.
    Named(String),
}

/// One segment after the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path into the inputs or a step's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// Where it starts.
    pub root: Root,
    /// The keys and indexes after it.
    pub segments: Vec<Segment>,
}

/// Why a path or template could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// The path does not start with `input` or `steps.NAME`.
    #[error("a path starts with `input` or `steps.NAME`, not `{0}`")]
    Root(String),
    /// A segment is empty or has a character a key may not have.
    #[error("bad segment in path `{0}` (keys are letters, digits, `_` and `-`; indexes are `[N]`)")]
    Segment(String),
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("path `{0}` has more than {MAX_SEGMENTS} segments")]
    TooLong(String),
    /// A `${` without its `}`.
    #[error("`${{` without a closing `}}` in `{0}`")]
    Unclosed(String),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("the template nests deeper than {MAX_DEPTH}")]
    TooDeep,
    /// More than [`MAX_REFS`] references.
    #[error("the template has more than {MAX_REFS} references")]
    TooManyRefs,
}

/// Why a template could not be evaluated against the results so far.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The path names a key or index the value does not have.
    #[error("`{path}` does not exist")]
    Missing {
        /// The path, as written.
        path: String,
    },
}

impl Path {
    /// Parses `text` (without `${` `}`).
    pub fn parse(text: &str) -> Result<Path, SyntaxError> {
        let mut rest = text.trim();
        let head = take_key(&mut rest).ok_or_else(|| SyntaxError::Root(text.to_owned()))?;
        let root = match head {
            "input" => Root::Input,
            "steps" => {
                if !rest.starts_with('.') {
                    return Err(SyntaxError::Root(text.to_owned()));
                }
                rest = &rest[1..];
                let name = take_key(&mut rest).ok_or_else(|| SyntaxError::Segment(text.to_owned()))?;
                Root::Named(name.to_owned())
            }
            _ => return Err(SyntaxError::Root(text.to_owned())),
        };
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if segments.len() >= MAX_SEGMENTS {
                return Err(SyntaxError::TooLong(text.to_owned()));
            }
            if let Some(after) = rest.strip_prefix('.') {
                rest = after;
                let key = take_key(&mut rest).ok_or_else(|| SyntaxError::Segment(text.to_owned()))?;
                segments.push(Segment::Key(key.to_owned()));
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(|| SyntaxError::Segment(text.to_owned()))?;
                let index = after[..end].parse::<usize>().map_err(|_| SyntaxError::Segment(text.to_owned()))?;
                segments.push(Segment::Index(index));
                rest = &after[end + 1..];
            } else {
                return Err(SyntaxError::Segment(text.to_owned()));
            }
        }
        Ok(Path { root, segments })
    }

    /// The value at this path, if there is one.
    pub fn get<'v>(&self, scope: &'v dyn Scope) -> Option<&'v Value> {
        let mut value = match self.root {
            Root::Input => scope.input(),
            Root::Step(i) => scope.result(i)?,
            Root::Named(_) => return None,
        };
        for segment in &self.segments {
            value = match segment {
                Segment::Key(k) => value.get(k.as_str())?,
                Segment::Index(i) => value.get(*i)?,
            };
        }
        Some(value)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            Root::Input => f.write_str("input")?,
            Root::Step(i) => write!(f, "steps.#{i}")?,
            Root::Named(n) => write!(f, "steps.{n}")?,
        }
        for segment in &self.segments {
            match segment {
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Takes a key (letters, digits, `_`, `-`) off the front of `rest`.
fn take_key<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    let (key, after) = rest.split_at(end);
    *rest = after;
    Some(key)
}

/// What a template reads from: the inputs and the results so far.
pub trait Scope {
    /// The workflow's inputs.
    fn input(&self) -> &Value;
    /// Step `i`'s result: `None` while it has none; a skipped step's is `null`.
    fn result(&self, i: usize) -> Option<&Value>;
}

/// A piece of a string template.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// Text as written.
    Text(String),
    /// A reference, rendered as text.
    Ref(Path),
}

/// A JSON value with references in it.
#[derive(Clone, Debug, PartialEq)]
pub enum Template {
    /// A value with no reference in it.
    Literal(Value),
    /// `${PATH}`: the value at the path.
    Ref(Path),
    /// A string with references in it.
    Text(Vec<Piece>),
    /// An array of templates.
    Array(Vec<Template>),
    /// An object of templates, keys in their written order.
    Object(Vec<(String, Template)>),
}

impl Template {
    /// Reads `value` as a template (taking its strings and literals as they are).
    pub fn parse(value: Value) -> Result<Template, SyntaxError> {
        let mut refs = 0;
        parse(value, 0, &mut refs)
    }

    /// A template that is this value, with no reference.
    pub fn literal(value: Value) -> Template {
        Template::Literal(value)
    }

    /// Every path this template reads.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        self.visit(&mut |p| out.push(p));
        out
    }

    /// Every path, mutably (to resolve step names).
    pub(crate) fn paths_mut(&mut self, f: &mut dyn FnMut(&mut Path)) {
        match self {
            Template::Literal(_) => {}
            Template::Ref(p) => f(p),
            Template::Text(pieces) => pieces.iter_mut().for_each(|piece| {
                if let Piece::Ref(p) = piece {
                    f(p);
                }
            }),
            Template::Array(items) => items.iter_mut().for_each(|t| t.paths_mut(f)),
            Template::Object(fields) => fields.iter_mut().for_each(|(_, t)| t.paths_mut(f)),
        }
    }

    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Path)) {
        match self {
            Template::Literal(_) => {}
            Template::Ref(p) => f(p),
            Template::Text(pieces) => pieces.iter().for_each(|piece| {
                if let Piece::Ref(p) = piece {
                    f(p);
                }
            }),
            Template::Array(items) => items.iter().for_each(|t| t.visit(f)),
            Template::Object(fields) => fields.iter().for_each(|(_, t)| t.visit(f)),
        }
    }

    /// The value of this template in `scope`.
    pub fn eval(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Ref(p) => p.get(scope).cloned().ok_or_else(|| EvalError::Missing { path: p.to_string() })?,
            Template::Text(pieces) => {
                let mut s = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => s.push_str(t),
                        Piece::Ref(p) => match p.get(scope) {
                            Some(Value::String(t)) => s.push_str(t),
                            Some(v) => s.push_str(&v.to_string()),
                            None => return Err(EvalError::Missing { path: p.to_string() }),
                        },
                    }
                }
                Value::String(s)
            }
            Template::Array(items) => Value::Array(items.iter().map(|t| t.eval(scope)).collect::<Result<_, _>>()?),
            Template::Object(fields) => Value::Object(
                fields.iter().map(|(k, t)| Ok((k.clone(), t.eval(scope)?))).collect::<Result<_, EvalError>>()?,
            ),
        })
    }
}

fn parse(value: Value, depth: usize, refs: &mut usize) -> Result<Template, SyntaxError> {
    if depth > MAX_DEPTH {
        return Err(SyntaxError::TooDeep);
    }
    let t = match value {
        Value::String(s) => parse_text(s, refs)?,
        Value::Array(items) => {
            Template::Array(items.into_iter().map(|v| parse(v, depth + 1, refs)).collect::<Result<_, _>>()?)
        }
        Value::Object(fields) => Template::Object(
            fields.into_iter().map(|(k, v)| Ok((k, parse(v, depth + 1, refs)?))).collect::<Result<_, _>>()?,
        ),
        other => Template::Literal(other),
    };
    // A subtree without references is kept as the value itself.
    Ok(match t {
        Template::Array(items) if items.iter().all(Template::is_literal) => {
            Template::Literal(Value::Array(items.into_iter().filter_map(Template::into_literal).collect()))
        }
        Template::Object(fields) if fields.iter().all(|(_, t)| t.is_literal()) => Template::Literal(Value::Object(
            fields.into_iter().filter_map(|(k, t)| Some((k, t.into_literal()?))).collect(),
        )),
        t => t,
    })
}

impl Template {
    fn is_literal(&self) -> bool {
        matches!(self, Template::Literal(_))
    }

    fn into_literal(self) -> Option<Value> {
        match self {
            Template::Literal(v) => Some(v),
            _ => None,
        }
    }
}

fn parse_text(s: String, refs: &mut usize) -> Result<Template, SyntaxError> {
    if !s.contains('$') {
        return Ok(Template::Literal(Value::String(s)));
    }
    // The common case, a whole string that is one reference: no pieces to gather.
    if let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
        && !inner.contains(['$', '}'])
    {
        *refs += 1;
        if *refs > MAX_REFS {
            return Err(SyntaxError::TooManyRefs);
        }
        return Ok(Template::Ref(Path::parse(inner)?));
    }
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s.as_str();
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(r) = after.strip_prefix("$${") {
            text.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix("${") {
            let end = r.find('}').ok_or_else(|| SyntaxError::Unclosed(s.clone()))?;
            *refs += 1;
            if *refs > MAX_REFS {
                return Err(SyntaxError::TooManyRefs);
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Ref(Path::parse(&r[..end])?));
            rest = &r[end + 1..];
        } else {
            text.push('$');
            rest = &after[1..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    if pieces.len() > 1 {
        return Ok(Template::Text(pieces));
    }
    Ok(match pieces.pop() {
        None => Template::Literal(Value::String(String::new())),
        Some(Piece::Text(t)) => Template::Literal(Value::String(t)),
        Some(Piece::Ref(p)) => Template::Ref(p),
    })
}

/// A condition on earlier results: a step runs only when it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The value tested.
    pub path: Path,
    /// The test.
    pub test: Test,
}

/// What a condition tests.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// The value exists and equals this.
    Equals(Value),
    /// The value does not exist or differs from this.
    NotEquals(Value),
    /// The value exists (and is not `null`).
    Exists,
    /// The value does not exist (or is `null`).
    Missing,
}

impl Condition {
    /// Whether the condition holds in `scope`.
    pub fn holds(&self, scope: &dyn Scope) -> bool {
        let value = self.path.get(scope).filter(|v| !v.is_null());
        match &self.test {
            Test::Equals(v) => value == Some(v),
            Test::NotEquals(v) => value != Some(v),
            Test::Exists => value.is_some(),
            Test::Missing => value.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct S(Value, Vec<Option<Value>>);
    impl Scope for S {
        fn input(&self) -> &Value {
            &self.0
        }
        fn result(&self, i: usize) -> Option<&Value> {
            self.1.get(i)?.as_ref()
        }
    }

    fn resolved(v: &Value) -> Template {
        let mut t = Template::parse(v.clone()).expect("parses");
        t.paths_mut(&mut |p| {
            if let Root::Named(n) = &p.root {
                p.root = Root::Step(if n == "a" { 0 } else { 1 });
            }
        });
        t
    }

    #[test]
    fn a_whole_string_reference_keeps_the_type_and_an_embedded_one_becomes_text() {
        let scope = S(json!({"n": 3}), vec![Some(json!({"text": "hi", "items": [1, {"id": "x"}]}))]);
        let t = resolved(
            &json!({"count": "${input.n}", "msg": "${steps.a.text} #${input.n}", "id": "${steps.a.items[1].id}"}),
        );
        assert_eq!(t.eval(&scope), Ok(json!({"count": 3, "msg": "hi #3", "id": "x"})));
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let scope = S(json!({}), vec![Some(json!({}))]);
        let t = resolved(&json!("${steps.a.nope}"));
        assert_eq!(t.eval(&scope), Err(EvalError::Missing { path: "steps.#0.nope".to_owned() }));
    }

    #[test]
    fn dollar_dollar_escapes_and_a_lone_dollar_is_text() {
        let t = Template::parse(json!("$${input} costs $5")).expect("parses");
        assert_eq!(t, Template::Literal(json!("${input} costs $5")));
    }

    #[test]
    fn bad_paths_are_refused() {
        assert!(matches!(Path::parse("output.x"), Err(SyntaxError::Root(_))));
        assert!(matches!(Path::parse("steps"), Err(SyntaxError::Root(_))));
        assert!(matches!(Path::parse("input..x"), Err(SyntaxError::Segment(_))));
        assert!(matches!(Path::parse("input[x]"), Err(SyntaxError::Segment(_))));
        assert!(matches!(Template::parse(json!("${input")), Err(SyntaxError::Unclosed(_))));
        let long = format!("input{}", ".a".repeat(MAX_SEGMENTS + 1));
        assert!(matches!(Path::parse(&long), Err(SyntaxError::TooLong(_))));
    }

    #[test]
    fn conditions_test_values_and_their_absence() {
        let scope = S(json!({"flag": "yes", "none": null}), vec![]);
        let c = |path: &str, test| Condition { path: Path::parse(path).expect("path"), test };
        assert!(c("input.flag", Test::Equals(json!("yes"))).holds(&scope));
        assert!(!c("input.flag", Test::NotEquals(json!("yes"))).holds(&scope));
        assert!(c("input.none", Test::Missing).holds(&scope));
        assert!(c("input.other", Test::Missing).holds(&scope));
        assert!(!c("input.other", Test::Exists).holds(&scope));
    }
}

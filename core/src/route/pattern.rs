//! Glob patterns over tool names: `*` matches any run of characters, `?` exactly one.
//!
//! Enough for routing rules (`db_*`, `search?`); anything richer belongs in a config
//! language, not in the hot path. Matching is iterative with one backtrack point, so it is
//! linear in practice and never recursive, whatever the pattern.

use std::fmt;

/// The longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 256;

/// A compiled glob.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern {
    source: String,
    glob: Vec<char>,
}

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The empty pattern matches nothing useful.
    #[error("an empty pattern matches no tool")]
    Empty,
    /// Longer than [`MAX_PATTERN_LEN`].
    #[error("a pattern is at most {MAX_PATTERN_LEN} characters")]
    TooLong,
}

impl Pattern {
    /// Compiles `source`.
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        if source.chars().count() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        Ok(Pattern { source: source.to_owned(), glob: source.chars().collect() })
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let p = &self.glob;
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0, 0);
        let mut backtrack: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                backtrack = Some((pi, ti));
                pi += 1;
            } else if let Some((star, from)) = backtrack {
                pi = star + 1;
                ti = from + 1;
                backtrack = Some((star, from + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

impl TryFrom<String> for Pattern {
    type Error = PatternError;

    fn try_from(source: String) -> Result<Pattern, PatternError> {
        Pattern::new(&source)
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.source
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Pattern::new(p).unwrap().matches(t)
    }

    #[test]
    fn stars_and_question_marks_match_as_globs_do() {
        assert!(m("db_*", "db_query"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(m("search?", "search2"));
        assert!(!m("search?", "search"));
        assert!(!m("db_*", "xdb_query"));
        assert!(m("*query", "db_query"));
        assert!(!m("a*b", "a"));
    }

    #[test]
    fn empty_and_oversized_patterns_are_rejected() {
        assert_eq!(Pattern::new(""), Err(PatternError::Empty));
        assert_eq!(Pattern::new(&"*".repeat(300)), Err(PatternError::TooLong));
    }
}

//! Canonical JSON: one text per meaning, so answers compare by what they say.
//!
//! Object keys are sorted (by their UTF-8 bytes) whatever order the server sent them in;
//! numbers are written in one form (an integral value as an integer, `1.0` and `1` and `1e0`
//! alike; any other as Rust's shortest round-trip form); strings use JSON's escaping; no
//! whitespace. Two answers agree exactly when their canonical texts are equal.

use std::fmt::Write;

use serde_json::Value;

/// Integers up to 2^53 are exact in an `f64`; beyond, a float is not written as an integer.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// The canonical text of `value`.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() <= EXACT_INT {
                    let _ = write!(out, "{}", f as i64);
                } else {
                    let _ = write!(out, "{f:?}");
                }
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's own escaping of a string cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_number_formatting_do_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b": 1.0, "a": [1e2, 0.5, -0]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":[100,0.5,0],"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&b), r#"{"a":[100,0.5,0],"b":1}"#);
    }

    #[test]
    fn different_meanings_stay_different() {
        assert_ne!(canonical(&json!({"a": 1})), canonical(&json!({"a": "1"})));
        assert_ne!(canonical(&json!([1, 2])), canonical(&json!([2, 1])));
        assert_ne!(canonical(&json!(0.1)), canonical(&json!(0.10000001)));
    }
}

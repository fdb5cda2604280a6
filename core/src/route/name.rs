//! Exposed tool names that every MCP host accepts: `^[A-Za-z0-9_-]{1,64}$`.
//!
//! Hosts differ in what they accept (some reject dots, some cap names at 64 characters), so
//! the catalog emits the intersection. A name is sanitised character by character (anything
//! else becomes `_`); a name longer than [`MAX_LEN`] is cut and given a suffix `-xxxxxxxx`, the
//! first 32 bits of the xxh3 hash of what it stands for, so two long names that share a prefix
//! stay distinct and the same input always gives the same name.

/// The longest exposed name.
pub const MAX_LEN: usize = 64;
/// Between a group and a tool in a prefixed name.
pub const SEPARATOR: &str = "__";
/// `-` and eight hex digits.
const SUFFIX_LEN: usize = 9;

/// Whether `name` is a valid exposed name.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_LEN && name.bytes().all(allowed)
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `raw` with every character outside `[A-Za-z0-9_-]` replaced by `_` (`_` if empty).
pub fn sanitize(raw: &str) -> String {
    let s: String = raw.chars().map(|c| if c.is_ascii() && allowed(c as u8) { c } else { '_' }).collect();
    if s.is_empty() { "_".to_owned() } else { s }
}

/// The 32-bit identity hash of `(group, tool)`, as eight hex digits.
pub fn identity_suffix(group: &str, tool: &str) -> String {
    let mut bytes = Vec::with_capacity(group.len() + tool.len() + 1);
    bytes.extend_from_slice(group.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(tool.as_bytes());
    format!("{:08x}", (xxhash_rust::xxh3::xxh3_64(&bytes) >> 32) as u32)
}

/// `base` (already sanitised), made to fit: unchanged when short enough, else cut with the
/// identity suffix of `(group, tool)`.
pub fn fit(base: &str, group: &str, tool: &str) -> String {
    if base.len() <= MAX_LEN { base.to_owned() } else { with_suffix(base, group, tool) }
}

/// `base` (already sanitised) cut to leave room for, and followed by, the identity suffix.
pub fn with_suffix(base: &str, group: &str, tool: &str) -> String {
    let keep = base.len().min(MAX_LEN - SUFFIX_LEN);
    format!("{}-{}", &base[..keep], identity_suffix(group, tool))
}

/// The prefixed form `group__tool`, sanitised, before fitting.
pub fn prefixed(group: &str, tool: &str) -> String {
    format!("{}{SEPARATOR}{}", sanitize(group), sanitize(tool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_replaces_what_hosts_reject() {
        assert_eq!(sanitize("files.read/v2"), "files_read_v2");
        assert_eq!(sanitize("héllo"), "h_llo");
        assert_eq!(sanitize(""), "_");
    }

    #[test]
    fn a_long_name_is_cut_with_a_deterministic_suffix() {
        let long = "x".repeat(100);
        let a = fit(&long, "g", &long);
        assert!(is_valid(&a), "{a}");
        assert_eq!(a.len(), MAX_LEN);
        assert_eq!(a, fit(&long, "g", &long));
        assert_ne!(a, fit(&long, "h", &long));
    }

    #[test]
    fn validity_matches_the_host_pattern() {
        assert!(is_valid("a-b_C9"));
        assert!(!is_valid(""));
        assert!(!is_valid("a.b"));
        assert!(!is_valid(&"a".repeat(65)));
    }
}

//! Configuration: the common `mcpServers` JSON shape, plus Gauntlet's keys.
//!
//! ```json
//! {
//!   "mcpServers": {
//!     "search-a": { "command": "my-server", "args": ["--fast"], "env": { "TOKEN": "${TOKEN}" },
//!                   "group": "search", "weight": 2, "priority": 10, "tags": ["eu"], "trusted": true },
//!     "remote":   { "type": "http", "url": "http://127.0.0.1:8080/mcp",
//!                   "headers": { "Authorization": "Bearer ${API_KEY:-dev}" } },
//!     "raw":      { "type": "tcp", "address": "127.0.0.1:9000" }
//!   },
//!   "gauntlet": { "balancer": "p2c-peak-ewma", "call_timeout": "5s", "retry": { "max_attempts": 2 } }
//! }
//! ```
//!
//! - `${VAR}` and `${VAR:-default}` are expanded in `command`, `args`, `env` values, `url`,
//!   `address` and header values, from the environment the caller passes in (never read
//!   implicitly, so tests are hermetic). A missing variable without a default is an error that
//!   names the server, the field and the variable, never a value.
//! - `env` values and header values are [`Secret`]s: their `Debug` and `Display` print
//!   `<redacted>`, so no log line or error message can carry them.
//! - The files other clients keep are read as they are: `mcpServers` (Claude Desktop, Cursor,
//!   Claude Code's `.mcp.json`) or `servers` (VS Code's `.vscode/mcp.json`); other top-level keys
//!   (`globalShortcut`, `inputs`) are ignored and listed in [`Config::ignored`]. A server with a
//!   `url` and no `type` is Streamable HTTP. `${env:NAME}` (VS Code's form) is `${NAME}`;
//!   `${input:…}` prompts, `envFile` and `"type": "sse"` are refused with what to write instead.
//! - Keys other clients write in a server's entry (`disabled`, `autoApprove`, `alwaysAllow`,
//!   `description`, `timeout`, `dev`) are accepted; `disabled: true` skips the server. Any other
//!   unknown key in an entry is an error naming the server and the key, because a typo in a
//!   policy key must not silently fall back to a default.
//! - Raw JSON is validated once, here, into a checked [`Config`]: every error names the server
//!   and the field, or the line and column.
//! - The `gauntlet` section is a [`Policy`], the same type as a scenario's `[client]` table
//!   (snake_case keys; see `docs/policy.md`). A key of the earlier camelCase format is
//!   refused with the name of the key that replaced it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use gauntlet_core::policy::{self, Period, Policy, PolicyError};
use serde::Deserialize;

/// The most servers one configuration may name.
pub const MAX_SERVERS: usize = 1_024;
/// The longest expanded string (a command, an argument, a URL, a value).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// A value that must never be printed: an environment value or a header value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (the transport).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Removes secret values from text meant for people (errors, status lines).
///
/// Built per server from every value substituted from the environment and every `env` and
/// header value. Values shorter than [`Redactor::MIN_LEN`] characters are not searched for:
/// they are too short to be secrets and would garble messages.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// The shortest value that is redacted.
    pub const MIN_LEN: usize = 4;

    fn add(&mut self, value: &str) {
        if value.chars().count() >= Self::MIN_LEN && !self.needles.iter().any(|n| n == value) {
            self.needles.push(value.to_owned());
            // Longest first, so a secret containing another is removed whole.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    /// Takes `other`'s secrets too.
    pub fn merge(&mut self, other: &Redactor) {
        for n in &other.needles {
            self.add(n);
        }
    }

    /// `text` with every secret replaced by `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "<redacted>");
            }
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.needles.len())
    }
}

/// How to reach one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportSpec {
    /// A child process speaking MCP over stdin/stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments (not secret by convention: put secrets in `env`).
        args: Vec<String>,
        /// Extra environment variables.
        env: BTreeMap<String, Secret>,
    },
    /// Streamable HTTP.
    Http {
        /// The endpoint.
        url: String,
        /// Extra request headers.
        headers: BTreeMap<String, Secret>,
        /// A PEM file of CA certificates trusted for this server beside the platform's
        /// (`caFile`; `https://` only). Relative paths are relative to the configuration
        /// file's directory once [`Config::rebase`] has run.
        ca_file: Option<std::path::PathBuf>,
    },
    /// Newline-delimited JSON-RPC over a TCP connection.
    Tcp {
        /// `host:port`.
        address: String,
    },
}

impl TransportSpec {
    /// The transport's kind, for display.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Stdio { .. } => "stdio",
            TransportSpec::Http { .. } => "http",
            TransportSpec::Tcp { .. } => "tcp",
        }
    }
}

/// One server, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Its name (the key in `mcpServers`).
    pub name: String,
    /// How to reach it.
    pub transport: TransportSpec,
    /// Its replica group (`None`: a group of its own).
    pub group: Option<String>,
    /// Weight for weighted balancing.
    pub weight: u32,
    /// Priority tier (higher preferred).
    pub priority: u32,
    /// Tags for route rules.
    pub tags: Vec<String>,
    /// Whether its tool annotations (`readOnlyHint`, `idempotentHint`) are believed.
    pub trusted: bool,
    /// Deadline of a connect (including the MCP handshake).
    pub connect_timeout: Duration,
    /// Deadline of one call attempt.
    pub call_timeout: Duration,
    /// Calls in flight to this server at once.
    pub max_concurrency: u32,
    /// Calls waiting for a slot; beyond this a call is rejected at once.
    pub queue: u32,
    /// Scrubs this server's secrets from messages.
    pub redact: Redactor,
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The servers, sorted by name.
    pub servers: Vec<ServerConfig>,
    /// The policy (the `gauntlet` section).
    pub policy: Policy,
    /// Top-level keys the file holds for other clients (`globalShortcut`, `inputs`), ignored;
    /// sorted. A tool that reads the file says so.
    pub ignored: Vec<String>,
}

/// What is wrong with a configuration. Never contains a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or not the expected shape: where, and what.
    #[error("{line}:{column}: {message}")]
    Syntax {
        /// 1-based line (0 when the error is about the whole file).
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The configuration as a whole is wrong (no server, too many).
    #[error("{0}")]
    Invalid(String),
    /// A field of one server is wrong.
    #[error("server `{server}`: `{field}`: {message}")]
    Server {
        /// The server's name.
        server: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Keys of the `gauntlet` section that do not fit together.
    #[error("gauntlet: `{}`: {}", .0.path, .0.message)]
    Policy(#[from] PolicyError),
}

fn server_error(server: &str, field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Server { server: server.to_owned(), field: field.to_owned(), message: message.into() }
}

/// A configuration file as other MCP clients write it: Claude Desktop, Cursor and Claude Code
/// (`mcpServers`), VS Code (`servers`, in `.vscode/mcp.json`), with their other top-level keys.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    mcp_servers: Option<BTreeMap<String, serde_json::Value>>,
    servers: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    gauntlet: Policy,
    /// Every other top-level key: another client's settings, ignored and listed.
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawServer {
    #[serde(rename = "type")]
    kind: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    ca_file: Option<String>,
    address: Option<String>,
    group: Option<String>,
    weight: Option<u32>,
    priority: Option<u32>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    trusted: bool,
    connect_timeout: Option<String>,
    call_timeout: Option<String>,
    max_concurrency: Option<u32>,
    queue: Option<u32>,
    // Keys other MCP clients write, accepted and (but for `disabled`) ignored.
    #[serde(default)]
    disabled: bool,
    #[serde(default, rename = "autoApprove")]
    _auto_approve: serde_json::Value,
    #[serde(default, rename = "alwaysAllow")]
    _always_allow: serde_json::Value,
    #[serde(default, rename = "description")]
    _description: serde_json::Value,
    #[serde(default, rename = "timeout")]
    _timeout: serde_json::Value,
    /// VS Code's: a file of environment variables; refused with a message (see `check_server`).
    env_file: Option<String>,
    /// VS Code's development settings (`watch`, `debug`), ignored.
    #[serde(default, rename = "dev")]
    _dev: serde_json::Value,
}

impl Config {
    /// Every server's secrets in one redactor: for what is written outside the client (logs of
    /// the libraries it uses).
    pub fn redactor(&self) -> Redactor {
        let mut all = Redactor::default();
        for s in &self.servers {
            all.merge(&s.redact);
        }
        all
    }

    /// Parses and checks a configuration, expanding `${VAR}` from `env`.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let raw: RawFile = serde_json::from_str(text).map_err(|e| syntax_error(text, &e))?;
        let policy = raw.gauntlet;
        policy.check()?;
        let ignored: Vec<String> = raw.other.keys().cloned().collect();
        let entries = match (raw.mcp_servers, raw.servers) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "both `mcpServers` and `servers`: give the servers in one".to_owned(),
                ));
            }
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => {
                let keys = if ignored.is_empty() { "none".to_owned() } else { ignored.join(", ") };
                return Err(ConfigError::Invalid(format!(
                    "no `mcpServers` (or VS Code's `servers`) section; the top-level keys are: {keys}"
                )));
            }
        };
        if entries.len() > MAX_SERVERS {
            return Err(ConfigError::Invalid(format!("at most {MAX_SERVERS} servers, got {}", entries.len())));
        }
        let mut servers = Vec::new();
        for (name, value) in entries {
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                return Err(ConfigError::Invalid(format!(
                    "server name {name:?} must be 1 to 128 printable characters"
                )));
            }
            let raw: RawServer =
                serde_json::from_value(value).map_err(|e| server_error(&name, "(entry)", e.to_string()))?;
            if raw.disabled {
                continue;
            }
            servers.push(check_server(&name, raw, &policy, env)?);
        }
        if servers.is_empty() {
            return Err(ConfigError::Invalid("`mcpServers` names no enabled server".to_owned()));
        }
        // The client builds its catalog from the servers connected so far, so a fallback group
        // with no server connected yet is no error there: a group no server is in is one here.
        let groups: std::collections::BTreeSet<&str> =
            servers.iter().map(|s| s.group.as_deref().unwrap_or(&s.name)).collect();
        for (i, f) in policy.fallbacks.iter().enumerate() {
            if let Some(g) = std::iter::once(&f.group).chain(&f.then).find(|g| !groups.contains(g.as_str())) {
                return Err(ConfigError::Invalid(format!(
                    "gauntlet: `fallbacks[{i}]`: no enabled server is in group `{g}`"
                )));
            }
        }
        Ok(Config { servers, policy, ignored })
    }

    /// Makes the servers' relative `caFile` paths relative to `dir` (the configuration file's
    /// directory), and reads each: a missing or unreadable file, or one without a PEM
    /// certificate, is an error naming the server, before any connection.
    pub fn rebase(&mut self, dir: &std::path::Path) -> Result<(), ConfigError> {
        for server in &mut self.servers {
            if let TransportSpec::Http { ca_file: Some(path), .. } = &mut server.transport {
                if path.is_relative() {
                    *path = dir.join(&*path);
                }
                crate::http::read_ca_file(path).map_err(|m| server_error(&server.name, "caFile", m))?;
            }
        }
        Ok(())
    }
}

/// serde_json's error with its position; a key of an earlier format is named with its
/// replacement.
fn syntax_error(text: &str, e: &serde_json::Error) -> ConfigError {
    let moved = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("gauntlet")?.as_object().cloned())
        .and_then(|section| section.keys().find_map(|k| Some((k.clone(), policy::moved(k)?))));
    let message = match moved {
        Some((old, new)) => format!("gauntlet: `{old}` is now `{new}` (see CHANGELOG.md)"),
        // serde_json ends its message with the position, which the error already leads with.
        None => {
            let text = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            text.strip_suffix(&suffix).map_or(text.clone(), str::to_owned)
        }
    };
    ConfigError::Syntax { line: e.line(), column: e.column(), message }
}

fn duration(
    field: &str,
    text: Option<&str>,
    default: Duration,
    err: impl Fn(&str, String) -> ConfigError,
) -> Result<Duration, ConfigError> {
    let Some(text) = text else { return Ok(default) };
    let d = text.parse::<Period>().map_err(|m| err(field, m))?;
    Ok(d.get())
}

fn check_server(
    name: &str,
    raw: RawServer,
    defaults: &Policy,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerConfig, ConfigError> {
    if raw.env_file.is_some() {
        return Err(server_error(
            name,
            "envFile",
            "Gauntlet does not read env files: give the variables in `env` (values may be `${NAME}` from the environment)",
        ));
    }
    let substituted = std::cell::RefCell::new(Redactor::default());
    let expand = |field: &str, text: &str| {
        let recording = |var: &str| {
            let value = env(var);
            if let Some(v) = &value {
                substituted.borrow_mut().add(v);
            }
            value
        };
        expand(text, &recording).map_err(|m| server_error(name, field, m))
    };
    // Cursor and others leave `type` out: a command is stdio, a url Streamable HTTP.
    let inferred = if raw.command.is_some() {
        "stdio"
    } else if raw.url.is_some() {
        "http"
    } else {
        ""
    };
    let kind = raw.kind.as_deref().unwrap_or(inferred);
    let transport = match kind {
        "stdio" => {
            let Some(command) = &raw.command else {
                return Err(server_error(name, "command", "a stdio server needs a command"));
            };
            if raw.url.is_some() || raw.address.is_some() {
                return Err(server_error(name, "type", "a stdio server takes command/args/env, not url or address"));
            }
            let mut env_out = BTreeMap::new();
            for (k, v) in &raw.env {
                let value = expand(&format!("env.{k}"), v)?;
                substituted.borrow_mut().add(&value);
                env_out.insert(k.clone(), Secret(value));
            }
            TransportSpec::Stdio {
                command: expand("command", command)?,
                args: raw
                    .args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| expand(&format!("args[{i}]"), a))
                    .collect::<Result<_, _>>()?,
                env: env_out,
            }
        }
        "sse" => {
            return Err(server_error(
                name,
                "type",
                "`sse` is the legacy HTTP+SSE transport, which Gauntlet does not speak; a server that also \
                 serves Streamable HTTP takes `\"type\": \"http\"` and its Streamable HTTP url (often `/mcp`)",
            ));
        }
        "http" | "streamable-http" | "streamableHttp" => {
            let Some(url) = &raw.url else { return Err(server_error(name, "url", "an http server needs a url")) };
            let url = expand("url", url)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(server_error(name, "url", "must start with http:// or https://"));
            }
            let mut headers = BTreeMap::new();
            for (k, v) in &raw.headers {
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    return Err(server_error(name, "headers", format!("`{k}` is not a valid header name")));
                }
                let value = expand(&format!("headers.{k}"), v)?;
                substituted.borrow_mut().add(&value);
                // A bearer token is also redacted without its scheme.
                if let Some((_, token)) = value.split_once(' ') {
                    substituted.borrow_mut().add(token);
                }
                headers.insert(k.clone(), Secret(value));
            }
            let ca_file = match &raw.ca_file {
                None => None,
                Some(_) if !url.starts_with("https://") => {
                    return Err(server_error(name, "caFile", "only an https:// server is verified against a CA"));
                }
                Some(path) if path.is_empty() => return Err(server_error(name, "caFile", "is empty")),
                Some(path) => Some(std::path::PathBuf::from(expand("caFile", path)?)),
            };
            TransportSpec::Http { url, headers, ca_file }
        }
        "tcp" => {
            let Some(address) = &raw.address else {
                return Err(server_error(name, "address", "a tcp server needs an address (host:port)"));
            };
            let address = expand("address", address)?;
            if !address.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) {
                return Err(server_error(name, "address", format!("`{address}` is not host:port")));
            }
            TransportSpec::Tcp { address }
        }
        "" => {
            return Err(server_error(
                name,
                "type",
                "give a command (stdio), or type \"http\" with a url, or type \"tcp\" with an address",
            ));
        }
        other => return Err(server_error(name, "type", format!("`{other}` is not one of stdio, http, tcp"))),
    };
    let serr = |f: &str, m: String| server_error(name, f, m);
    let weight = raw.weight.unwrap_or(1);
    if !(1..=gauntlet_core::fleet::MAX_WEIGHT).contains(&weight) {
        return Err(server_error(name, "weight", format!("must be in 1..={}", gauntlet_core::fleet::MAX_WEIGHT)));
    }
    let max_concurrency = raw.max_concurrency.unwrap_or(defaults.max_concurrency.get());
    if max_concurrency == 0 {
        return Err(server_error(name, "maxConcurrency", "must be positive"));
    }
    Ok(ServerConfig {
        name: name.to_owned(),
        transport,
        group: raw.group,
        weight,
        priority: raw.priority.unwrap_or(0),
        tags: raw.tags,
        trusted: raw.trusted,
        connect_timeout: duration(
            "connectTimeout",
            raw.connect_timeout.as_deref(),
            defaults.connect_timeout.get(),
            serr,
        )?,
        call_timeout: duration("callTimeout", raw.call_timeout.as_deref(), defaults.call_timeout.get(), serr)?,
        max_concurrency,
        queue: raw.queue.unwrap_or(defaults.queue.get()),
        redact: substituted.into_inner(),
    })
}

/// Expands `${VAR}` and `${VAR:-default}` in `text`. `$$` is a literal `$`.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(body) = rest.strip_prefix("${") else {
            out.push('$');
            rest = &rest[1..];
            continue;
        };
        let Some(end) = body.find('}') else { return Err("unterminated `${`".to_owned()) };
        let inner = &body[..end];
        let (var, default) = match inner.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (inner, None),
        };
        if var.starts_with("input:") {
            return Err(format!(
                "`${{{var}}}` is a VS Code prompt, which Gauntlet cannot show: set an environment variable and write `${{NAME}}`"
            ));
        }
        // VS Code writes an environment variable as `${env:NAME}`.
        let var = var.strip_prefix("env:").unwrap_or(var);
        if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("`${{{var}}}` is not a variable name"));
        }
        // `${VAR:-default}` also replaces a variable set to the empty string, as in POSIX shells.
        let value = match env(var) {
            Some(v) if !v.is_empty() || default.is_none() => v,
            _ => match default {
                Some(d) => d.to_owned(),
                None => return Err(format!("environment variable `{var}` is not set and has no default")),
            },
        };
        out.push_str(&value);
        if out.len() > MAX_VALUE_LEN {
            return Err(format!("expands to more than {MAX_VALUE_LEN} bytes"));
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    if out.len() > MAX_VALUE_LEN {
        return Err(format!("longer than {MAX_VALUE_LEN} bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "TOKEN" => Some("s3cr3t-token".to_owned()),
            "EMPTY" => Some(String::new()),
            "HOST" => Some("127.0.0.1".to_owned()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, &env)
    }

    #[test]
    fn variables_expand_with_defaults_and_dollar_escapes() {
        assert_eq!(expand("a-${TOKEN}-b", &env).unwrap(), "a-s3cr3t-token-b");
        assert_eq!(expand("${MISSING:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("cost: $$5 and $x", &env).unwrap(), "cost: $5 and $x");
        assert!(expand("${MISSING}", &env).unwrap_err().contains("`MISSING` is not set"));
        assert!(expand("${TOKEN", &env).is_err());
    }

    #[test]
    fn the_three_transports_and_gauntlet_keys_parse() {
        let c = parse(
            r#"{"mcpServers": {
                "a": {"command": "srv", "args": ["--x"], "env": {"T": "${TOKEN}"}, "group": "g", "weight": 3, "tags": ["eu"], "trusted": true},
                "b": {"type": "http", "url": "http://${HOST}:8080/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
                "c": {"type": "tcp", "address": "${HOST}:9000", "callTimeout": "250ms"},
                "off": {"command": "x", "disabled": true, "autoApprove": ["t"]}
            }, "gauntlet": {"balancer": "round-robin", "namespacing": "on-collision", "hedge": {"after": "50ms"}}}"#,
        )
        .unwrap();
        let names: Vec<_> = c.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(c.servers[0].weight, 3);
        assert!(
            matches!(&c.servers[1].transport, TransportSpec::Http { url, .. } if url == "http://127.0.0.1:8080/mcp")
        );
        assert_eq!(c.servers[2].call_timeout, Duration::from_millis(250));
        assert_eq!(c.policy.balancer, gauntlet_core::balance::Strategy::ROUND_ROBIN);
        assert_eq!(c.policy.hedge.and_then(|h| h.after).map(Period::get), Some(Duration::from_millis(50)));
    }

    #[test]
    fn secrets_never_appear_in_debug_output_or_errors() {
        let c = parse(
            r#"{"mcpServers": {"a": {"command": "srv", "env": {"T": "${TOKEN}"}},
                        "b": {"type": "http", "url": "http://h/mcp", "headers": {"X-Key": "${TOKEN}"}}}}"#,
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("<redacted>"));
        let err = parse(r#"{"mcpServers": {"a": {"command": "srv", "env": {"T": "${TOKEN}", "U": "${NOPE}"}}}}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
        assert_eq!(err.to_string(), "server `a`: `env.U`: environment variable `NOPE` is not set and has no default");
    }

    #[test]
    fn the_redactor_removes_every_substituted_value_and_secret() {
        let c = parse(r#"{"mcpServers": {"a": {"command": "/opt/${TOKEN}/srv", "env": {"K": "literal-key-1"}},
                        "b": {"type": "http", "url": "http://${HOST}/mcp", "headers": {"Authorization": "Bearer sk-abcdef"}}}}"#)
            .unwrap();
        let a = &c.servers[0].redact;
        assert_eq!(a.scrub("cannot start `/opt/s3cr3t-token/srv`"), "cannot start `/opt/<redacted>/srv`");
        assert_eq!(a.scrub("env literal-key-1"), "env <redacted>");
        let b = &c.servers[1].redact;
        assert_eq!(b.scrub("sent sk-abcdef to 127.0.0.1"), "sent <redacted> to <redacted>");
    }

    #[test]
    fn errors_name_the_server_and_the_field() {
        for (text, expected) in [
            (r#"{"mcpServers": {"s": {"type": "http"}}}"#, "server `s`: `url`: an http server needs a url"),
            (
                r#"{"mcpServers": {"s": {"type": "http", "url": "ftp://x"}}}"#,
                "server `s`: `url`: must start with http:// or https://",
            ),
            (
                r#"{"mcpServers": {"s": {"type": "tcp", "address": "nohost"}}}"#,
                "server `s`: `address`: `nohost` is not host:port",
            ),
            (r#"{"mcpServers": {"s": {"command": "x", "weight": 0}}}"#, "server `s`: `weight`: must be in 1..=65536"),
            (
                r#"{"mcpServers": {"s": {"command": "x", "callTimeout": "soon"}}}"#,
                "server `s`: `callTimeout`: `soon` is not a duration",
            ),
            (r#"{"mcpServers": {"s": {"type": "smtp"}}}"#, "server `s`: `type`: `smtp` is not one of stdio, http, tcp"),
            (
                r#"{"mcpServers": {"s": {"command": "x", "wieght": 2}}}"#,
                "server `s`: `(entry)`: unknown field `wieght`",
            ),
            (
                r#"{"mcpServers": {"s": {"command": "x"}}, "gauntlet": {"balancer": "fastest"}}"#,
                "1:74: unknown balancer `fastest`; expected one of: round-robin,",
            ),
            (r#"{"mcpServers": {}}"#, "`mcpServers` names no enabled server"),
            (
                r#"{"mcpServers": {"s": {"command": "x", "group": "a"}}, "gauntlet": {"fallbacks": [{"group": "a", "then": ["b"]}]}}"#,
                "gauntlet: `fallbacks[0]`: no enabled server is in group `b`",
            ),
            (r#"{"mcpServers": "#, "EOF while parsing"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(expected) || err.contains(expected), "{text}\n  got: {err}\n  want: {expected}");
        }
    }

    #[test]
    fn policy_errors_carry_the_line_and_column_of_the_bad_value() {
        let text =
            "{\"mcpServers\": {\"s\": {\"command\": \"x\"}},\n \"gauntlet\": {\"retry\": {\"max_attempts\": 11}}}";
        let ConfigError::Syntax { line, column, message } = parse(text).unwrap_err() else { panic!("a syntax error") };
        // serde_json points just past the value.
        assert_eq!((line, column), (2, 43));
        assert!(message.starts_with("11 is not in 1..=10"), "{message}");
        assert!(!message.contains("at line"), "the position is said once: {message}");
    }

    #[test]
    fn a_key_of_the_earlier_format_names_its_replacement() {
        let text = r#"{"mcpServers": {"s": {"command": "x"}}, "gauntlet": {"breakerFailures": 3}}"#;
        let ConfigError::Syntax { message, .. } = parse(text).unwrap_err() else { panic!("a syntax error") };
        assert_eq!(message, "gauntlet: `breakerFailures` is now `breaker.consecutive_failures` (see CHANGELOG.md)");
    }

    #[test]
    fn keys_that_do_not_fit_together_are_named() {
        let text = r#"{"mcpServers": {"s": {"command": "x"}}, "gauntlet": {"retry": {"base": "2s", "cap": "1s"}}}"#;
        let ConfigError::Policy(e) = parse(text).unwrap_err() else { panic!("a policy error") };
        assert_eq!(e.path, "retry.cap");
    }
}

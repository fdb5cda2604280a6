//! Routing: the federated tool catalog, and which servers may serve a call.
//!
//! A multi-server client shows its host one flat list of tools. [`Catalog::build`] makes that
//! list from every server's tool list:
//!
//! - **Replica groups.** Servers in the same group that offer the same tool are replicas of one
//!   exposed tool, balanced over. Different groups give distinct tools, even with equal names.
//!   A server with no group is a group of its own, named after it.
//! - **Namespacing** ([`Namespacing`]): always prefix (`group__tool`, the default: names never
//!   change when another server joins), prefix only on collision, prefer the strictly highest
//!   priority for the bare name, or never prefix (a collision is then a typed
//!   [`CatalogError::Ambiguous`]). In no mode does a collision resolve silently in favour of
//!   whoever registered last: **no server can shadow another server's tool**.
//! - **Valid names.** Exposed names match `^[A-Za-z0-9_-]{1,64}$`, which every MCP host accepts:
//!   other characters become `_`; a name too long, or two names that sanitise to the same text,
//!   get a short hash suffix of what they stand for ([`name`]).
//! - **Untrusted input.** Tool names come from servers: empty, oversized and duplicate names are
//!   skipped with a [`Skipped`] note instead of failing the whole catalog (fail-open).
//! - **Fallback order** ([`Fallback`]): a group can name groups that back it up; their copies of
//!   its tools become its later tiers instead of separate tools.
//! - **Determinism.** The catalog is built from inputs sorted by server name and held in
//!   `BTreeMap`s, so it is identical whatever order servers were added in.
//!
//! [`RouteTable`] then narrows each tool's servers by rules on tool name patterns, server tags
//! and capabilities.

mod catalog;
pub mod name;
mod pattern;
mod table;

pub use catalog::{
    Catalog, CatalogConfig, CatalogError, Entry, Fallback, MAX_RAW_TOOL_NAME, MAX_TOOLS_PER_SERVER, Namespacing,
    ServerTools, SkipReason, Skipped, ToolHints, ToolInfo,
};
pub use pattern::{MAX_PATTERN_LEN, Pattern, PatternError};
pub use table::{Route, RouteRule, RouteTable};

//! Building the federated catalog. See the [module docs](super).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::name;
use crate::fleet::ServerId;

/// The longest tool name a server may send; longer names are skipped (untrusted input).
pub const MAX_RAW_TOOL_NAME: usize = 1_024;
/// The most tools taken from one server; the rest are skipped (untrusted input).
pub const MAX_TOOLS_PER_SERVER: usize = 10_000;

/// How exposed names relate to the tools' own names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Namespacing {
    /// Every tool is `group__tool`. Names never change when servers join or leave.
    #[default]
    Always,
    /// A tool offered by one group keeps its own name; when several groups offer it, all of
    /// them are prefixed (so none wins silently). Adding a server can rename tools.
    OnCollision,
    /// As `OnCollision`, but the group with the strictly highest priority keeps the bare name;
    /// on a tie at the top every one is prefixed.
    PreferPriority,
    /// Names are never prefixed; two groups offering one name is [`CatalogError::Ambiguous`].
    Never,
}

/// MCP tool annotations that matter to retries. Both are hints, and only a trusted server's
/// hints are believed (that is the client's decision); a replica set's hint is the
/// conservative merge of its members' (true only if every replica says so).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolHints {
    /// `readOnlyHint`: the tool does not modify its environment.
    pub read_only: bool,
    /// `idempotentHint`: calling it twice with the same arguments has no further effect.
    pub idempotent: bool,
}

/// One tool as a server listed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolInfo {
    /// The tool's own name.
    pub name: String,
    /// Its annotations.
    pub hints: ToolHints,
}

impl ToolInfo {
    /// A tool with no hints.
    pub fn named(name: &str) -> ToolInfo {
        ToolInfo { name: name.to_owned(), hints: ToolHints::default() }
    }
}

/// One server's contribution to the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTools {
    /// Its id in the fleet.
    pub id: ServerId,
    /// Its configured name, unique in the catalog.
    pub name: String,
    /// Its replica group; `None` makes it a group of its own, named after it.
    pub group: Option<String>,
    /// Its priority (see [`Namespacing::PreferPriority`]).
    pub priority: u32,
    /// Configured tags, for [`RouteRule`](super::RouteRule)s.
    pub tags: BTreeSet<String>,
    /// Capabilities it advertised (e.g. `tools.listChanged`), for route rules.
    pub capabilities: BTreeSet<String>,
    /// Its tools, as listed (all pages).
    pub tools: Vec<ToolInfo>,
}

impl ServerTools {
    /// A server with the given tools, in no group, with no tags or capabilities.
    pub fn new(id: ServerId, name: &str, tools: &[&str]) -> ServerTools {
        ServerTools {
            id,
            name: name.to_owned(),
            group: None,
            priority: 0,
            tags: BTreeSet::new(),
            capabilities: BTreeSet::new(),
            tools: tools.iter().map(|t| ToolInfo::named(t)).collect(),
        }
    }

    /// The same server in `group`.
    pub fn in_group(mut self, group: &str) -> ServerTools {
        self.group = Some(group.to_owned());
        self
    }

    /// The group it serves in: its own, or a group of its own named after it.
    pub fn group_name(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.name)
    }
}

/// A group backed up by others, in order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// The group backed up.
    pub group: String,
    /// The groups that back it up, tried in this order after it.
    pub then: Vec<String>,
}

/// How to build a catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogConfig {
    /// The naming mode.
    pub namespacing: Namespacing,
    /// Fallback orders between groups.
    pub fallbacks: Vec<Fallback>,
}

/// Why a catalog cannot be built. These are configuration errors, not server misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Two servers share a name.
    #[error("two servers are named `{0}`; server names must be unique")]
    DuplicateServer(String),
    /// Two servers share an id.
    #[error("two servers have the id {0}")]
    DuplicateId(ServerId),
    /// With [`Namespacing::Never`], several groups offer one tool name.
    #[error("tool `{tool}` is offered by groups {groups:?}; choose a namespacing mode that prefixes, or remove one")]
    Ambiguous {
        /// The tool's name.
        tool: String,
        /// The groups offering it, sorted.
        groups: Vec<String>,
    },
    /// A fallback rule names a group no server is in.
    #[error("fallback rule names group `{0}`, which no server is in")]
    UnknownGroup(String),
    /// A group falls back on itself, or a backup group has backups of its own.
    #[error("fallback rules for group `{0}` form a chain or a cycle; a backup group cannot have backups")]
    FallbackCycle(String),
    /// A group has two fallback rules.
    #[error("group `{0}` has more than one fallback rule")]
    DuplicateFallback(String),
    /// Two tools still share an exposed name after hash suffixes (a 32-bit hash collision).
    #[error("tools `{0}` and `{1}` cannot be given distinct names")]
    NameClash(String, String),
}

/// Why a tool a server listed is not in the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The server listed the name twice; the first listing is kept.
    Duplicate,
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_RAW_TOOL_NAME`] bytes.
    TooLong,
    /// The server listed more than [`MAX_TOOLS_PER_SERVER`] tools.
    TooMany,
}

/// A tool left out of the catalog, and why. The name is untrusted: display it escaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The server that listed it.
    pub server: ServerId,
    /// The server's name.
    pub server_name: String,
    /// Up to 64 characters of the tool's name.
    pub tool: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            SkipReason::Duplicate => "listed twice",
            SkipReason::Empty => "has an empty name",
            SkipReason::TooLong => "has a name over 1024 bytes",
            SkipReason::TooMany => "is beyond the per-server tool limit",
        };
        write!(f, "server `{}`: tool {:?} {why}", self.server_name, self.tool)
    }
}

/// One exposed tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name the client exposes.
    pub exposed: String,
    /// The tool's own name, as its servers know it.
    pub tool: String,
    /// The group whose tool this is.
    pub group: String,
    /// Servers to try, tier by tier: the group's replicas first, then each fallback group's
    /// servers that offer the same tool. Each tier is sorted by id and non-empty.
    pub tiers: Vec<Vec<ServerId>>,
    /// The conservative merge of every server's hints, fallbacks included.
    pub hints: ToolHints,
}

impl Entry {
    /// The group's own replicas.
    pub fn replicas(&self) -> &[ServerId] {
        &self.tiers[0]
    }

    /// Every server, tier by tier.
    pub fn servers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.tiers.iter().flatten().copied()
    }
}

/// What the catalog keeps of each server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ServerMeta {
    pub(super) name: String,
    pub(super) group: String,
    pub(super) tags: BTreeSet<String>,
    pub(super) capabilities: BTreeSet<String>,
}

/// The federated tool catalog: exposed name → entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    entries: BTreeMap<String, Entry>,
    pub(super) servers: BTreeMap<ServerId, ServerMeta>,
    skipped: Vec<Skipped>,
}

/// A group's copy of one tool while building.
#[derive(Debug)]
struct Offer {
    servers: BTreeSet<ServerId>,
    hints: ToolHints,
    priority: u32,
}

impl Catalog {
    /// Builds the catalog of `servers` (in any order).
    pub fn build(servers: &[ServerTools], config: &CatalogConfig) -> Result<Catalog, CatalogError> {
        let mut sorted: Vec<&ServerTools> = servers.iter().collect();
        sorted.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        let mut catalog = Catalog::default();
        // group → tool → offer
        let mut groups: BTreeMap<String, BTreeMap<String, Offer>> = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for (i, server) in sorted.iter().enumerate() {
            if i > 0 && sorted[i - 1].name == server.name {
                return Err(CatalogError::DuplicateServer(server.name.clone()));
            }
            if !ids.insert(server.id) {
                return Err(CatalogError::DuplicateId(server.id));
            }
            let group = server.group_name().to_owned();
            catalog.servers.insert(
                server.id,
                ServerMeta {
                    name: server.name.clone(),
                    group: group.clone(),
                    tags: server.tags.clone(),
                    capabilities: server.capabilities.clone(),
                },
            );
            let offers = groups.entry(group).or_default();
            let mut seen = BTreeSet::new();
            for (k, tool) in server.tools.iter().enumerate() {
                let reason = if k >= MAX_TOOLS_PER_SERVER {
                    Some(SkipReason::TooMany)
                } else if tool.name.is_empty() {
                    Some(SkipReason::Empty)
                } else if tool.name.len() > MAX_RAW_TOOL_NAME {
                    Some(SkipReason::TooLong)
                } else if !seen.insert(tool.name.as_str()) {
                    Some(SkipReason::Duplicate)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    catalog.skipped.push(Skipped {
                        server: server.id,
                        server_name: server.name.clone(),
                        tool: tool.name.chars().take(name::MAX_LEN).collect(),
                        reason,
                    });
                    continue;
                }
                let offer = offers.entry(tool.name.clone()).or_insert_with(|| Offer {
                    servers: BTreeSet::new(),
                    hints: tool.hints,
                    priority: server.priority,
                });
                offer.servers.insert(server.id);
                offer.hints.read_only &= tool.hints.read_only;
                offer.hints.idempotent &= tool.hints.idempotent;
                offer.priority = offer.priority.max(server.priority);
            }
        }

        let backups = check_fallbacks(&config.fallbacks, &groups)?;
        // Entries before naming: (group, tool, tiers, hints, priority), in (group, tool) order.
        let mut drafts = Vec::new();
        for (group, offers) in &groups {
            let rule = config.fallbacks.iter().find(|f| &f.group == group);
            for (tool, offer) in offers {
                if backups.contains(group.as_str()) && is_backed_up(tool, group, &config.fallbacks, &groups) {
                    continue; // folded into the tiers of the group it backs up
                }
                let mut tiers = vec![offer.servers.iter().copied().collect::<Vec<_>>()];
                let mut hints = offer.hints;
                for backup in rule.map(|r| r.then.as_slice()).unwrap_or_default() {
                    if let Some(b) = groups.get(backup).and_then(|o| o.get(tool)) {
                        tiers.push(b.servers.iter().copied().collect());
                        hints.read_only &= b.hints.read_only;
                        hints.idempotent &= b.hints.idempotent;
                    }
                }
                drafts.push((group.clone(), tool.clone(), tiers, hints, offer.priority));
            }
        }

        // Which groups expose each bare tool name.
        let mut by_tool: BTreeMap<&str, Vec<(&str, u32)>> = BTreeMap::new();
        for (group, tool, _, _, priority) in &drafts {
            by_tool.entry(tool).or_default().push((group, *priority));
        }
        let mut named: Vec<(String, usize)> = Vec::with_capacity(drafts.len());
        for (k, (group, tool, _, _, priority)) in drafts.iter().enumerate() {
            let rivals = &by_tool[tool.as_str()];
            let bare = match config.namespacing {
                Namespacing::Always => false,
                Namespacing::OnCollision => rivals.len() == 1,
                Namespacing::PreferPriority => rivals.iter().all(|&(g, p)| g == group || p < *priority),
                Namespacing::Never => {
                    if rivals.len() > 1 {
                        return Err(CatalogError::Ambiguous {
                            tool: tool.clone(),
                            groups: rivals.iter().map(|&(g, _)| g.to_owned()).collect(),
                        });
                    }
                    true
                }
            };
            let base = if bare { name::sanitize(tool) } else { name::prefixed(group, tool) };
            named.push((name::fit(&base, group, tool), k));
        }

        // Names that still clash (sanitising, prefixes that look alike) all get suffixes.
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for (n, _) in &named {
            *count.entry(n.as_str()).or_default() += 1;
        }
        let clashing: BTreeSet<String> = count.into_iter().filter(|&(_, c)| c > 1).map(|(n, _)| n.to_owned()).collect();
        for (exposed, k) in named {
            let (group, tool, tiers, hints, _) = &drafts[k];
            let exposed = if clashing.contains(&exposed) { name::with_suffix(&exposed, group, tool) } else { exposed };
            debug_assert!(name::is_valid(&exposed), "invalid exposed name {exposed:?}");
            let entry = Entry {
                exposed: exposed.clone(),
                tool: tool.clone(),
                group: group.clone(),
                tiers: tiers.clone(),
                hints: *hints,
            };
            if let Some(previous) = catalog.entries.insert(exposed, entry) {
                return Err(CatalogError::NameClash(
                    format!("{}/{}", previous.group, previous.tool),
                    format!("{group}/{tool}"),
                ));
            }
        }
        Ok(catalog)
    }

    /// The entry exposed as `exposed`.
    pub fn get(&self, exposed: &str) -> Option<&Entry> {
        self.entries.get(exposed)
    }

    /// Every entry, by exposed name.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &Entry> {
        self.entries.values()
    }

    /// How many tools are exposed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no tool is exposed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Tools the servers listed that were left out, in server-name order.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// A server's configured name.
    pub fn server_name(&self, id: ServerId) -> Option<&str> {
        self.servers.get(&id).map(|m| m.name.as_str())
    }

    /// The servers whose group is `group`, by id.
    pub fn group_members(&self, group: &str) -> Vec<ServerId> {
        self.servers.iter().filter(|(_, m)| m.group == group).map(|(&id, _)| id).collect()
    }
}

/// The set of groups that back others up; rejects unknown groups and chains.
fn check_fallbacks<'a>(
    rules: &'a [Fallback],
    groups: &BTreeMap<String, BTreeMap<String, Offer>>,
) -> Result<BTreeSet<&'a str>, CatalogError> {
    let mut backups = BTreeSet::new();
    let mut primaries = BTreeSet::new();
    for rule in rules {
        if !groups.contains_key(&rule.group) {
            return Err(CatalogError::UnknownGroup(rule.group.clone()));
        }
        if !primaries.insert(rule.group.as_str()) {
            return Err(CatalogError::DuplicateFallback(rule.group.clone()));
        }
        for backup in &rule.then {
            if !groups.contains_key(backup) {
                return Err(CatalogError::UnknownGroup(backup.clone()));
            }
            backups.insert(backup.as_str());
        }
    }
    if let Some(both) = primaries.intersection(&backups).next() {
        return Err(CatalogError::FallbackCycle((*both).to_owned()));
    }
    Ok(backups)
}

/// Whether `group`'s `tool` is a backup of a primary group that offers the same tool.
fn is_backed_up(
    tool: &str,
    group: &str,
    rules: &[Fallback],
    groups: &BTreeMap<String, BTreeMap<String, Offer>>,
) -> bool {
    rules
        .iter()
        .any(|r| r.then.iter().any(|b| b == group) && groups.get(&r.group).is_some_and(|o| o.contains_key(tool)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(c: &Catalog) -> Vec<&str> {
        c.entries().map(|e| e.exposed.as_str()).collect()
    }

    fn cfg(namespacing: Namespacing) -> CatalogConfig {
        CatalogConfig { namespacing, fallbacks: Vec::new() }
    }

    #[test]
    fn replicas_in_one_group_become_one_tool() {
        let servers = [
            ServerTools::new(ServerId(0), "a1", &["search"]).in_group("a"),
            ServerTools::new(ServerId(1), "a2", &["search"]).in_group("a"),
        ];
        let c = Catalog::build(&servers, &CatalogConfig::default()).unwrap();
        assert_eq!(names(&c), ["a__search"]);
        assert_eq!(c.get("a__search").unwrap().replicas(), [ServerId(0), ServerId(1)]);
    }

    #[test]
    fn on_collision_prefixes_every_colliding_group_and_no_one_else() {
        let servers = [
            ServerTools::new(ServerId(0), "a", &["search", "only_a"]),
            ServerTools::new(ServerId(1), "b", &["search"]),
        ];
        let c = Catalog::build(&servers, &cfg(Namespacing::OnCollision)).unwrap();
        assert_eq!(names(&c), ["a__search", "b__search", "only_a"]);
    }

    #[test]
    fn never_prefixing_makes_a_collision_a_typed_error() {
        let servers =
            [ServerTools::new(ServerId(0), "a", &["search"]), ServerTools::new(ServerId(1), "b", &["search"])];
        let err = Catalog::build(&servers, &cfg(Namespacing::Never)).unwrap_err();
        assert_eq!(err, CatalogError::Ambiguous { tool: "search".into(), groups: vec!["a".into(), "b".into()] });
    }

    #[test]
    fn prefer_priority_gives_the_bare_name_only_to_a_strict_winner() {
        let mut hi = ServerTools::new(ServerId(0), "hi", &["search"]);
        hi.priority = 10;
        let lo = ServerTools::new(ServerId(1), "lo", &["search"]);
        let c = Catalog::build(&[hi.clone(), lo.clone()], &cfg(Namespacing::PreferPriority)).unwrap();
        assert_eq!(names(&c), ["lo__search", "search"]);
        assert_eq!(c.get("search").unwrap().replicas(), [ServerId(0)]);
        let mut tie = lo;
        tie.priority = 10;
        let c = Catalog::build(&[hi, tie], &cfg(Namespacing::PreferPriority)).unwrap();
        assert_eq!(names(&c), ["hi__search", "lo__search"]);
    }

    #[test]
    fn a_server_cannot_shadow_a_tool_by_registering_a_look_alike_name() {
        // `evil` lists "a__search" bare; `a` offers "search". Both stay reachable and distinct.
        let servers =
            [ServerTools::new(ServerId(0), "a", &["search"]), ServerTools::new(ServerId(1), "evil", &["a__search"])];
        let c = Catalog::build(&servers, &cfg(Namespacing::OnCollision)).unwrap();
        assert_eq!(c.len(), 2);
        for e in c.entries() {
            assert!(name::is_valid(&e.exposed));
            let offered_by: Vec<_> = e.servers().collect();
            let expected = if e.tool == "search" { ServerId(0) } else { ServerId(1) };
            assert_eq!(offered_by, [expected], "{e:?}");
        }
    }

    #[test]
    fn prefixed_names_that_clash_both_get_distinct_suffixes() {
        // "a" + "b__c" and "a__b" + "c" both prefix to "a__b__c".
        let servers = [ServerTools::new(ServerId(0), "a", &["b__c"]), ServerTools::new(ServerId(1), "a__b", &["c"])];
        let c = Catalog::build(&servers, &CatalogConfig::default()).unwrap();
        let exposed = names(&c);
        assert_eq!(exposed.len(), 2);
        assert!(exposed.iter().all(|n| n.starts_with("a__b__c-") && name::is_valid(n)), "{exposed:?}");
        assert_ne!(exposed[0], exposed[1]);
    }

    #[test]
    fn hostile_tool_names_are_skipped_with_a_reason() {
        let long = "x".repeat(MAX_RAW_TOOL_NAME + 1);
        let servers = [ServerTools::new(ServerId(0), "s", &["ok", "ok", "", &long])];
        let c = Catalog::build(&servers, &CatalogConfig::default()).unwrap();
        assert_eq!(names(&c), ["s__ok"]);
        let reasons: Vec<_> = c.skipped().iter().map(|s| s.reason).collect();
        assert_eq!(reasons, [SkipReason::Duplicate, SkipReason::Empty, SkipReason::TooLong]);
    }

    #[test]
    fn fallback_groups_become_later_tiers_of_the_primary_tool() {
        let servers = [
            ServerTools::new(ServerId(0), "p", &["search", "lookup"]).in_group("primary"),
            ServerTools::new(ServerId(1), "s", &["search"]).in_group("secondary"),
            ServerTools::new(ServerId(2), "b", &["search", "extra"]).in_group("backup"),
        ];
        let config = CatalogConfig {
            namespacing: Namespacing::OnCollision,
            fallbacks: vec![Fallback { group: "primary".into(), then: vec!["secondary".into(), "backup".into()] }],
        };
        let c = Catalog::build(&servers, &config).unwrap();
        assert_eq!(names(&c), ["extra", "lookup", "search"]);
        assert_eq!(c.get("search").unwrap().tiers, vec![vec![ServerId(0)], vec![ServerId(1)], vec![ServerId(2)]]);
        assert_eq!(c.get("lookup").unwrap().tiers, vec![vec![ServerId(0)]]);
    }

    #[test]
    fn fallback_rules_that_chain_or_name_unknown_groups_are_rejected() {
        let servers = [ServerTools::new(ServerId(0), "a", &["t"]), ServerTools::new(ServerId(1), "b", &["t"])];
        let chain = CatalogConfig {
            namespacing: Namespacing::Always,
            fallbacks: vec![
                Fallback { group: "a".into(), then: vec!["b".into()] },
                Fallback { group: "b".into(), then: vec!["a".into()] },
            ],
        };
        assert!(matches!(Catalog::build(&servers, &chain), Err(CatalogError::FallbackCycle(_))));
        let unknown = CatalogConfig {
            namespacing: Namespacing::Always,
            fallbacks: vec![Fallback { group: "a".into(), then: vec!["zzz".into()] }],
        };
        assert_eq!(Catalog::build(&servers, &unknown), Err(CatalogError::UnknownGroup("zzz".into())));
    }

    #[test]
    fn duplicate_server_names_are_a_configuration_error() {
        let servers = [ServerTools::new(ServerId(0), "a", &["t"]), ServerTools::new(ServerId(1), "a", &["u"])];
        assert_eq!(Catalog::build(&servers, &CatalogConfig::default()), Err(CatalogError::DuplicateServer("a".into())));
    }

    #[test]
    fn hints_are_true_only_when_every_replica_says_so() {
        let mut a = ServerTools::new(ServerId(0), "a1", &[]).in_group("g");
        a.tools.push(ToolInfo { name: "t".into(), hints: ToolHints { read_only: true, idempotent: true } });
        let mut b = ServerTools::new(ServerId(1), "a2", &[]).in_group("g");
        b.tools.push(ToolInfo { name: "t".into(), hints: ToolHints { read_only: true, idempotent: false } });
        let c = Catalog::build(&[a, b], &CatalogConfig::default()).unwrap();
        assert_eq!(c.get("g__t").unwrap().hints, ToolHints { read_only: true, idempotent: false });
    }
}

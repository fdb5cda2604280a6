//! Route rules: which of a tool's servers may serve it, by tool name pattern, server tags and
//! server capabilities.
//!
//! Rules are tried in order; the first whose pattern matches a tool's exposed name applies and
//! keeps, in every tier, only the servers that have all of its tags and capabilities (a tier
//! left empty is dropped, the fallback order of the others is kept). A tool no rule matches
//! keeps all its servers. A tool whose rule leaves it no server stays listed with no tiers, so a
//! call to it fails with a clear "no route" rather than "unknown tool".

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{Catalog, ToolHints};
use super::pattern::Pattern;
use crate::fleet::ServerId;

/// Restricts the servers of the tools whose exposed names match `tools`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRule {
    /// Which tools, by exposed name.
    pub tools: Pattern,
    /// Tags a server must all have.
    pub require_tags: BTreeSet<String>,
    /// Capabilities a server must all have advertised.
    pub require_capabilities: BTreeSet<String>,
}

/// Where calls to one exposed tool may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The exposed name.
    pub exposed: String,
    /// The tool's own name, sent upstream.
    pub tool: String,
    /// Servers tier by tier, in fallback order; each tier non-empty and sorted by id.
    pub tiers: Vec<Vec<ServerId>>,
    /// Merged retry hints.
    pub hints: ToolHints,
}

/// Every exposed tool's route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: BTreeMap<String, Route>,
}

impl RouteTable {
    /// Applies `rules` to `catalog`.
    pub fn new(catalog: &Catalog, rules: &[RouteRule]) -> RouteTable {
        let routes = catalog
            .entries()
            .map(|entry| {
                let rule = rules.iter().find(|r| r.tools.matches(&entry.exposed));
                let tiers = entry
                    .tiers
                    .iter()
                    .map(|tier| {
                        tier.iter()
                            .copied()
                            .filter(|id| rule.is_none_or(|r| admits(catalog, r, *id)))
                            .collect::<Vec<_>>()
                    })
                    .filter(|tier| !tier.is_empty())
                    .collect();
                let route =
                    Route { exposed: entry.exposed.clone(), tool: entry.tool.clone(), tiers, hints: entry.hints };
                (entry.exposed.clone(), route)
            })
            .collect();
        RouteTable { routes }
    }

    /// The route of `exposed`.
    pub fn route(&self, exposed: &str) -> Option<&Route> {
        self.routes.get(exposed)
    }

    /// The routes whose exposed names match `pattern`, by name.
    pub fn matching<'a>(&'a self, pattern: &'a Pattern) -> impl Iterator<Item = &'a Route> + 'a {
        self.routes.values().filter(|r| pattern.matches(&r.exposed))
    }

    /// Every route, by exposed name.
    pub fn routes(&self) -> impl ExactSizeIterator<Item = &Route> {
        self.routes.values()
    }
}

fn admits(catalog: &Catalog, rule: &RouteRule, id: ServerId) -> bool {
    catalog.servers.get(&id).is_some_and(|meta| {
        rule.require_tags.is_subset(&meta.tags) && rule.require_capabilities.is_subset(&meta.capabilities)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{CatalogConfig, Namespacing, ServerTools};

    fn tagged(id: u32, name: &str, tags: &[&str], caps: &[&str]) -> ServerTools {
        let mut s = ServerTools::new(ServerId(id), name, &["db_query", "search"]).in_group("g");
        s.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        s.capabilities = caps.iter().map(|t| (*t).to_owned()).collect();
        s
    }

    fn table(rules: &[RouteRule]) -> RouteTable {
        let servers = [tagged(0, "eu1", &["eu"], &["tools.listChanged"]), tagged(1, "us1", &["us"], &[])];
        let config = CatalogConfig { namespacing: Namespacing::OnCollision, fallbacks: vec![] };
        RouteTable::new(&Catalog::build(&servers, &config).unwrap(), rules)
    }

    fn rule(pattern: &str, tags: &[&str], caps: &[&str]) -> RouteRule {
        RouteRule {
            tools: Pattern::new(pattern).unwrap(),
            require_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            require_capabilities: caps.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn a_tag_rule_keeps_only_tagged_servers_for_matching_tools() {
        let t = table(&[rule("db_*", &["eu"], &[])]);
        assert_eq!(t.route("db_query").unwrap().tiers, vec![vec![ServerId(0)]]);
        assert_eq!(t.route("search").unwrap().tiers, vec![vec![ServerId(0), ServerId(1)]]);
    }

    #[test]
    fn a_capability_rule_filters_by_advertised_capabilities() {
        let t = table(&[rule("*", &[], &["tools.listChanged"])]);
        assert_eq!(t.route("search").unwrap().tiers, vec![vec![ServerId(0)]]);
    }

    #[test]
    fn the_first_matching_rule_wins_and_may_leave_no_route() {
        let t = table(&[rule("search", &["asia"], &[]), rule("*", &["us"], &[])]);
        assert!(t.route("search").unwrap().tiers.is_empty());
        assert_eq!(t.route("db_query").unwrap().tiers, vec![vec![ServerId(1)]]);
        let p = Pattern::new("db_*").unwrap();
        assert_eq!(t.matching(&p).count(), 1);
    }
}

use std::collections::BTreeSet;

use gauntlet_core::ServerId;
use gauntlet_core::route::{Catalog, CatalogConfig, Namespacing, ServerTools, ToolInfo, name};
use proptest::prelude::*;

/// Tool names drawn from a small alphabet so collisions, prefix look-alikes (`a__b`), invalid
/// characters and over-long names all happen often.
fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof!["[ab_.]{1,6}", "[a-c]{1,3}(__[a-c]{1,3})?", "[a-z]{60,80}", "[ -~]{1,10}", "\\PC{1,8}",]
}

fn servers() -> impl Strategy<Value = Vec<ServerTools>> {
    prop::collection::vec((prop::option::of("[ab]{1,2}"), prop::collection::vec(tool_name(), 0..6), 0u32..3), 0..8)
        .prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (group, tools, priority))| {
                    let mut s = ServerTools::new(ServerId(i as u32), &format!("srv{i}"), &[]);
                    s.group = group;
                    s.priority = priority;
                    s.tools = tools.iter().map(|t| ToolInfo::named(t)).collect();
                    s
                })
                .collect()
        })
}

fn namespacing() -> impl Strategy<Value = Namespacing> {
    prop_oneof![Just(Namespacing::Always), Just(Namespacing::OnCollision), Just(Namespacing::PreferPriority)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_catalog_is_identical_under_any_permutation_of_servers(
        servers in servers(), ns in namespacing(), shuffle in any::<prop::sample::Index>(), rotate in 0usize..8,
    ) {
        let config = CatalogConfig { namespacing: ns, fallbacks: vec![] };
        let original = Catalog::build(&servers, &config);
        let mut permuted = servers.clone();
        permuted.reverse();
        if !permuted.is_empty() {
            let len = permuted.len();
            permuted.rotate_left(rotate % len);
            permuted.swap(0, shuffle.index(len));
        }
        prop_assert_eq!(original, Catalog::build(&permuted, &config));
    }

    #[test]
    fn exposed_names_are_unique_and_valid_for_every_mcp_host(servers in servers(), ns in namespacing()) {
        let catalog = Catalog::build(&servers, &CatalogConfig { namespacing: ns, fallbacks: vec![] }).unwrap();
        let mut seen = BTreeSet::new();
        for e in catalog.entries() {
            prop_assert!(name::is_valid(&e.exposed), "invalid: {:?}", e.exposed);
            prop_assert!(seen.insert(e.exposed.clone()), "duplicate: {:?}", e.exposed);
        }
    }

    #[test]
    fn no_exposed_name_resolves_to_a_server_that_did_not_offer_that_tool(servers in servers(), ns in namespacing()) {
        let catalog = Catalog::build(&servers, &CatalogConfig { namespacing: ns, fallbacks: vec![] }).unwrap();
        for e in catalog.entries() {
            for id in e.servers() {
                let server = &servers[id.index()];
                prop_assert!(server.tools.iter().any(|t| t.name == e.tool), "{} does not offer {:?}", server.name, e.tool);
                prop_assert_eq!(server.group.as_deref().unwrap_or(&server.name), e.group.as_str());
            }
        }
    }

    #[test]
    fn every_offered_tool_is_exposed_exactly_once_per_group(servers in servers(), ns in namespacing()) {
        let catalog = Catalog::build(&servers, &CatalogConfig { namespacing: ns, fallbacks: vec![] }).unwrap();
        let skipped: BTreeSet<_> = catalog.skipped().iter().map(|s| (s.server, s.tool.clone())).collect();
        let mut expected = BTreeSet::new();
        for s in &servers {
            for t in &s.tools {
                if !t.name.is_empty() && t.name.len() <= 1024 {
                    expected.insert((s.group.clone().unwrap_or_else(|| s.name.clone()), t.name.clone()));
                }
            }
        }
        let exposed: BTreeSet<_> = catalog.entries().map(|e| (e.group.clone(), e.tool.clone())).collect();
        prop_assert_eq!(exposed.len(), catalog.len(), "a (group, tool) exposed twice");
        prop_assert_eq!(exposed, expected, "skipped: {:?}", skipped);
    }
}

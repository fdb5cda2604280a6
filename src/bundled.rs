//! The bundled scenario suite, compiled in: what `gauntlet suite` runs with no path when there
//! is no `scenarios/` directory here. A test checks that it matches `scenarios/`.

/// `(path, text)` of every bundled scenario, sorted by path.
pub(crate) const BUNDLED: &[(&str, &str)] = &[
    ("scenarios/breaker-variants.toml", include_str!("../scenarios/breaker-variants.toml")),
    ("scenarios/brownout.toml", include_str!("../scenarios/brownout.toml")),
    ("scenarios/byzantine-minority.toml", include_str!("../scenarios/byzantine-minority.toml")),
    ("scenarios/crash-restart.toml", include_str!("../scenarios/crash-restart.toml")),
    ("scenarios/fallback-group.toml", include_str!("../scenarios/fallback-group.toml")),
    ("scenarios/flapping-server.toml", include_str!("../scenarios/flapping-server.toml")),
    ("scenarios/full-outage.toml", include_str!("../scenarios/full-outage.toml")),
    ("scenarios/gray-failure.toml", include_str!("../scenarios/gray-failure.toml")),
    ("scenarios/latency-spike.toml", include_str!("../scenarios/latency-spike.toml")),
    ("scenarios/long-pause.toml", include_str!("../scenarios/long-pause.toml")),
    ("scenarios/loss-on-every-replica.toml", include_str!("../scenarios/loss-on-every-replica.toml")),
    ("scenarios/maglev-affinity.toml", include_str!("../scenarios/maglev-affinity.toml")),
    ("scenarios/mixed-eras.toml", include_str!("../scenarios/mixed-eras.toml")),
    ("scenarios/one-way-partition.toml", include_str!("../scenarios/one-way-partition.toml")),
    ("scenarios/packet-loss.toml", include_str!("../scenarios/packet-loss.toml")),
    ("scenarios/primary-partition.toml", include_str!("../scenarios/primary-partition.toml")),
    ("scenarios/race-first.toml", include_str!("../scenarios/race-first.toml")),
    ("scenarios/rolling-restart.toml", include_str!("../scenarios/rolling-restart.toml")),
    ("scenarios/slow-start.toml", include_str!("../scenarios/slow-start.toml")),
    ("scenarios/steady-state.toml", include_str!("../scenarios/steady-state.toml")),
    ("scenarios/tag-routing.toml", include_str!("../scenarios/tag-routing.toml")),
    ("scenarios/tool-list-change.toml", include_str!("../scenarios/tool-list-change.toml")),
    ("scenarios/weighted-capacity.toml", include_str!("../scenarios/weighted-capacity.toml")),
    ("scenarios/workflow-compensation.toml", include_str!("../scenarios/workflow-compensation.toml")),
    ("scenarios/workflow-conditional.toml", include_str!("../scenarios/workflow-conditional.toml")),
    ("scenarios/workflow-crash-resume.toml", include_str!("../scenarios/workflow-crash-resume.toml")),
    ("scenarios/workflow-fallback.toml", include_str!("../scenarios/workflow-fallback.toml")),
    ("scenarios/workflow-fan-out.toml", include_str!("../scenarios/workflow-fan-out.toml")),
    ("scenarios/workflow-pipeline.toml", include_str!("../scenarios/workflow-pipeline.toml")),
    ("scenarios/workflow-rolling-restart.toml", include_str!("../scenarios/workflow-rolling-restart.toml")),
];

#[cfg(test)]
mod tests {
    use super::BUNDLED;

    #[test]
    fn the_bundled_suite_is_exactly_the_scenarios_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("scenarios/")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
            .map(|e| {
                let name = format!("scenarios/{}", e.file_name().to_string_lossy());
                (name, std::fs::read_to_string(e.path()).expect("readable"))
            })
            .collect();
        on_disk.sort();
        let bundled: Vec<(String, String)> = BUNDLED.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
        assert_eq!(bundled, on_disk, "add new scenario files to src/bundled.rs");
    }
}

//! Replays every committed fuzz input through its target's property on every
//! `cargo test`: the seeds (`fuzz/seeds/<target>`) and the inputs of crashes
//! once found (`fuzz/regressions/<target>`), so a fixed crash stays fixed
//! without waiting for a fuzz run to rediscover it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use palisade_fuzz_properties::{TARGETS, property};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_input_holds_its_property() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for &target in TARGETS {
        let run = property(target).expect("every listed target has a property");
        for kind in ["seeds", "regressions"] {
            for file in inputs(&fuzz_dir().join(kind).join(target)) {
                let data = std::fs::read(&file).expect("a committed corpus file is readable");
                replayed += 1;
                if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                    failures.push(file.display().to_string());
                }
            }
        }
    }
    assert!(failures.is_empty(), "properties failed on: {failures:#?}");
    assert!(replayed >= TARGETS.len(), "only {replayed} inputs replayed");
}

/// A repository check: a fuzz target without a property here (or without
/// seeds) would never be replayed by `cargo test`.
#[test]
fn every_fuzz_target_has_a_property_and_seeds() {
    let mut targets: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz/fuzz_targets exists")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    targets.sort();
    assert_eq!(targets, TARGETS, "fuzz targets and properties differ");
    for target in TARGETS {
        assert!(
            !inputs(&fuzz_dir().join("seeds").join(target)).is_empty(),
            "fuzz/seeds/{target} has no seed"
        );
        let source = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{target}.rs")))
            .expect("the target is readable");
        assert!(
            source.contains(&format!("palisade_fuzz_properties::{target}::run")),
            "fuzz target {target} does not call its property"
        );
    }
}

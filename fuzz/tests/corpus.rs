//! Replays every corpus and every past crash through its target (no instrumentation, no
//! mutation: the inputs as checked in). A failure here aborts with the panic message;
//! the input being replayed is printed first.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs every input under `fuzz/<kind>/<target>/`; the count per target.
fn replay(kind: &str) -> Vec<(&'static str, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    strata_fuzz::TARGETS
        .iter()
        .map(|target| {
            let files = inputs(&root.join(target.name));
            for file in &files {
                let data = std::fs::read(file).expect("read input");
                eprintln!("{kind}: {}", file.display());
                (target.run)(&data);
            }
            eprintln!("{kind}: {} inputs through {}", files.len(), target.name);
            (target.name, files.len())
        })
        .collect()
}

#[test]
fn corpora_and_past_crashes_replay_cleanly() {
    let seeds = replay("corpus");
    // The corpora are seeded for every target: an empty replay would test nothing.
    for (target, count) in &seeds {
        assert!(*count > 0, "{target} has no corpus in fuzz/corpus/{target}");
    }
    let crashes = replay("regressions");
    let total = |r: &[(&str, usize)]| r.iter().map(|(_, n)| n).sum::<usize>();
    eprintln!(
        "{} corpus inputs and {} past crashes replayed",
        total(&seeds),
        total(&crashes)
    );
    // The broker the Kafka target drove still answers.
    strata_fuzz::kafka::check_alive(strata_fuzz::kafka::broker_port());
}

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

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    let mut total = 0;
    for target in strata_fuzz::TARGETS {
        let files = inputs(&root.join(target.name));
        for file in &files {
            let data = std::fs::read(file).expect("read input");
            eprintln!("{kind}: {}", file.display());
            (target.run)(&data);
        }
        eprintln!("{kind}: {} inputs through {}", files.len(), target.name);
        total += files.len();
    }
    total
}

#[test]
fn corpora_and_past_crashes_replay_cleanly() {
    // The corpora are seeded for every target: an empty replay would test nothing.
    let seeds = replay("corpus");
    for target in strata_fuzz::TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target.name);
        assert!(
            !inputs(&dir).is_empty(),
            "{} has no corpus in {}",
            target.name,
            dir.display()
        );
    }
    let crashes = replay("regressions");
    eprintln!("{seeds} corpus inputs and {crashes} past crashes replayed");
    // The broker the Kafka target drove still answers.
    strata_fuzz::kafka::check_alive(strata_fuzz::kafka::broker_port());
}

//! The libFuzzer runner: `STRATA_FUZZ_TARGET=<target> strata-fuzz [libFuzzer options]
//! <corpus dirs>`; `fuzz/run.sh` builds it with coverage instrumentation and runs every
//! target in turn (`make fuzz`).

#![no_main]
#![allow(unsafe_code)] // libFuzzer's entry point is an `extern "C"` function.

use std::sync::OnceLock;

static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let run = TARGET.get_or_init(|| {
        let name = std::env::var("STRATA_FUZZ_TARGET").unwrap_or_default();
        match strata_fuzz::target(&name) {
            Some(t) => t.run,
            None => {
                let names: Vec<_> = strata_fuzz::TARGETS.iter().map(|t| t.name).collect();
                eprintln!(
                    "STRATA_FUZZ_TARGET must name a target: {}",
                    names.join(", ")
                );
                std::process::exit(2);
            }
        }
    });
    run(data);
});

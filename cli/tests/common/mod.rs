//! Shared by the CLI tests: waiting (tests/wait.rs) and reading a command's result
//! inside a wait.

#![allow(dead_code)]

use std::process::Output;

#[path = "../../../tests/wait.rs"]
pub mod wait;

/// A finished command's stdout, or its exit status and stderr as the error when it
/// failed: for commands run inside [`wait::eventually`].
pub fn stdout_if_ok(output: Output) -> Result<String, String> {
    if output.status.success() {
        String::from_utf8(output.stdout).map_err(|e| format!("stdout: {e}"))
    } else {
        Err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

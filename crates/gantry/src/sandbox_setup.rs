//! Making sure the default sandbox can run: bubblewrap on `PATH`, installed from the
//! distribution's packages when this machine can (root with `apt-get`), else a clear error
//! that says what to do.

use std::process::{Command, Stdio};

use anyhow::bail;

use crate::output;

fn has_bwrap() -> bool {
    Command::new("bwrap")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Installs bubblewrap when it is missing and this process may.
pub fn ensure_bubblewrap() -> anyhow::Result<()> {
    if has_bwrap() {
        return Ok(());
    }
    let root = rustix::process::geteuid().is_root();
    let apt = Command::new("apt-get")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if root && apt {
        output::message(
            "bubblewrap (the job sandbox) is missing; installing it: apt-get install -y bubblewrap",
        );
        let installed = Command::new("apt-get")
            .args(["install", "-y", "bubblewrap"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if installed && has_bwrap() {
            return Ok(());
        }
    }
    bail!(
        "jobs run in bubblewrap sandboxes, and `bwrap` is not installed: install it (`sudo apt-get install -y bubblewrap`) or, for trusted workflows only, pass --unsafe-host-executor"
    )
}

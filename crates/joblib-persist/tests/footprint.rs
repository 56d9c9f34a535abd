//! Adopting one layer alone stays light: with `default-features = false`,
//! joblib-persist and joblib-hash each pull at most 25 crates and none that
//! needs a C compiler (issue 16, item 14). Both are checked here, beside
//! the heavier of the two.

use std::process::Command;

fn minimal_tree(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "--no-default-features"])
        .args(["-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort_unstable();
    lines.dedup();
    lines
}

#[test]
fn minimal_builds_are_small_and_need_no_c_compiler() {
    for package in ["joblib-persist", "joblib-hash"] {
        let lines = minimal_tree(package);
        assert!(
            lines.len() <= 25,
            "{package}: {} crates: {lines:#?}",
            lines.len()
        );
        for c_build in ["cc ", "zstd-sys", "liblzma-sys", "bzip2-sys", "pkg-config"] {
            assert!(
                !lines.iter().any(|l| l.starts_with(c_build)),
                "{package}: {lines:#?}"
            );
        }
    }
}

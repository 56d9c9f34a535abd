//! The same values give the same digests in another process, whose maps and
//! sets iterate in another order.

use std::process::Command;

#[test]
fn digests_agree_with_a_child_process() {
    let ours: Vec<(String, String)> = joblib_tests::samples()
        .into_iter()
        .map(|(name, d)| (name.to_string(), d.to_hex()))
        .collect();
    for run in 0..3 {
        let out = Command::new(env!("CARGO_BIN_EXE_hash-child"))
            .output()
            .expect("the hash-child binary runs");
        assert!(out.status.success(), "child failed: {out:?}");
        let text = String::from_utf8(out.stdout).expect("utf-8 output");
        let theirs: Vec<(String, String)> = text
            .lines()
            .map(|l| {
                let (n, d) = l.split_once('\t').expect("name<TAB>digest");
                (n.to_string(), d.to_string())
            })
            .collect();
        assert_eq!(ours, theirs, "child run {run}");
    }
}

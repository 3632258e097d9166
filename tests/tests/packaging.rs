//! Every library crate can be published as it is: a `rust-version` at least what its
//! dependencies declare (from `cargo metadata`), a README, the LICENSE and docs.rs
//! metadata (`scripts/check-packaging.py`; `.ci/run` also runs `cargo package`).
#![allow(clippy::expect_used)]

#[test]
fn library_crates_are_ready_to_publish() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/check-packaging.py"))
        .current_dir(root)
        .output()
        .expect("run python3 scripts/check-packaging.py");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for krate in [
        "socketio-adapter-core",
        "socketio-adapter-redis",
        "socketio-adapter-kafka",
        "socketio-adapter-amqp",
        "socketio-emitter",
    ] {
        assert!(stdout.contains(&format!("packaging: {krate} rust-version")), "{krate} not checked: {stdout}");
    }
}

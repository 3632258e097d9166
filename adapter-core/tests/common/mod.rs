//! What the vector and fuzz tests share: the captured fixtures under `tests/fixtures/`
//! (one JSON document per captured scenario, `messages[].hex` for raw bytes).
#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};

/// Hex digits as bytes.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// `tests/fixtures/<sub>`.
pub fn fixtures_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(sub)
}

/// Every JSON document under `tests/fixtures/<sub>`, sub-directories included, in path
/// order: (file stem, document).
pub fn fixture_docs(sub: &str) -> Vec<(String, serde_json::Value)> {
    let mut files = Vec::new();
    let mut dirs = vec![fixtures_dir(sub)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixtures directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let doc = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
            (path.file_stem().expect("stem").to_string_lossy().into_owned(), doc)
        })
        .collect()
}

//! The fuzz targets' seeds through their entry points on the stable toolchain (the `fuzz`
//! feature): `cargo test -p api --features fuzz --test fuzz_seeds`. libFuzzer runs start from
//! these seeds (fuzz/README.md); this proves each seed passes as it stands.
#![cfg(feature = "fuzz")]

use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut found: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no seeds in {}", dir.display());
    found
}

#[test]
fn api_body_seeds_pass() {
    for (_, data) in seeds("api_body") {
        if let Some((&kind, body)) = data.split_first() {
            // Every kind, not only the seed's own.
            for k in 0..9u8 {
                api::fuzz::request(kind.wrapping_add(k), body);
            }
        }
    }
}

#[test]
fn csv_row_seeds_pass() {
    for (_, data) in seeds("csv_row") {
        store::fuzz_rows(&data);
    }
}

//! Finds the prepared web assets (`scripts/web-assets.sh` writes them to `.web-assets/embed`
//! at the workspace root, outside the tracked tree) and tells the crate where they are; without
//! them an empty folder is embedded and the pages say the viewer and charts are missing.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=HUREN_WEB_ASSETS");
    let prepared = std::env::var("HUREN_WEB_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../../.web-assets/embed"));
    let stamp = prepared.join("VERSIONS");
    let dir = if stamp.is_file() {
        // The script rewrites the stamp last: a new set of assets rebuilds the crate.
        println!("cargo:rerun-if-changed={}", stamp.display());
        prepared
    } else {
        let empty = out.join("no-web-assets");
        if let Err(e) = std::fs::create_dir_all(&empty) {
            println!("cargo:warning=cannot create {}: {e}", empty.display());
        }
        println!("cargo:rerun-if-changed=build.rs");
        empty
    };
    println!("cargo:rustc-env=HUREN_WEB_ASSET_DIR={}", dir.display());
}

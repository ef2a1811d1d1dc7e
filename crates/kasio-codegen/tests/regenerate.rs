//! The committed generated code is exactly what the generator makes from the specs.

#![allow(clippy::unwrap_used)]

#[test]
fn committed_code_matches_the_specs() {
    let dirs = kasio_codegen::spec_dirs().unwrap_or_else(|e| panic!("{e}"));
    let root = kasio_codegen::workspace_root();
    let files = kasio_codegen::generate(&dirs, &root.join(kasio_codegen::ERROR_CODES)).unwrap();
    let differ = kasio_codegen::diff(&root.join(kasio_codegen::OUT_DIR), &files).unwrap();
    assert!(
        differ.is_empty(),
        "generated code is stale; run `cargo run -p kasio-codegen`: {}",
        differ.join(", ")
    );
    // Every API key Kafka 4.4 defines, 0 to 94, has a request and a response.
    let index = &files["mod.rs"];
    for key in 0..=94 {
        assert!(
            index.contains(&format!(" = {key},")),
            "API key {key} is missing"
        );
    }
}

//! Generates kasio-proto's message codecs from Kafka's JSON message specs.
//!
//! The specs are read from several directories in priority order: the newest Kafka release's
//! specs (from the 4.4.0 `kafka-clients` jar, fetched by `scripts/fetch-specs`) first, then
//! the 3.9.1 jar's for messages the newer set no longer defines.

mod api;
mod emit;
mod error_codes;
mod spec;

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Where the generated modules go, relative to the workspace root.
pub const OUT_DIR: &str = "crates/kasio-proto/src/generated";

/// The error-code table, relative to the workspace root.
pub const ERROR_CODES: &str = "crates/kasio-codegen/data/error_codes.tsv";

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The spec directories to read, newest first: `KASIO_SPECS` (colon-separated) if set, else
/// the cached 4.4.0 specs, then the cached 3.9.1 ones.
///
/// # Errors
/// A message naming the directories that are missing and how to fetch them.
pub fn spec_dirs() -> Result<Vec<PathBuf>, String> {
    let dirs: Vec<PathBuf> = match std::env::var("KASIO_SPECS") {
        Ok(v) => v
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        Err(_) => {
            let cache = std::env::var("KASIO_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/kasio")
                });
            vec![
                cache.join("specs/4.4.0/common/message"),
                cache.join("specs/3.9.1/common/message"),
            ]
        }
    };
    let missing: Vec<String> = dirs
        .iter()
        .filter(|d| !d.is_dir())
        .map(|d| d.display().to_string())
        .collect();
    if missing.is_empty() {
        Ok(dirs)
    } else {
        Err(format!(
            "message specs not found in {}; run scripts/fetch-specs (Kafka 4.4.0's and 3.9.1's specs, \
             from their kafka-clients jars on Maven Central)",
            missing.join(", ")
        ))
    }
}

/// Every generated file, keyed by its path under [`OUT_DIR`].
///
/// # Errors
/// A message naming the spec or table that could not be read or formatted.
pub fn generate(dirs: &[PathBuf], error_codes: &Path) -> Result<BTreeMap<String, String>, String> {
    let specs = spec::load(dirs)?;
    let mut files = BTreeMap::new();
    for s in &specs {
        files.insert(
            format!("{}.rs", emit::module_name(s)),
            emit::message_module(s),
        );
    }
    files.insert("mod.rs".into(), api::index(&specs)?);
    let table =
        fs::read_to_string(error_codes).map_err(|e| format!("{}: {e}", error_codes.display()))?;
    files.insert("error_code.rs".into(), error_codes::module(&table)?);
    for text in files.values_mut() {
        *text = rustfmt(text)?;
    }
    Ok(files)
}

fn rustfmt(src: &str) -> Result<String, String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("rustfmt: no stdin")?;
    let input = src.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    writer
        .join()
        .map_err(|_| "rustfmt: writer panicked")?
        .map_err(|e| format!("rustfmt: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("rustfmt output: {e}"))
}

/// Writes `files` into `out`, removing generated files that are no longer produced.
///
/// # Errors
/// The I/O error, with the path.
pub fn write(out: &Path, files: &BTreeMap<String, String>) -> Result<(), String> {
    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for entry in fs::read_dir(out).map_err(|e| format!("{}: {e}", out.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !files.contains_key(&name) {
            fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    for (name, text) in files {
        fs::write(out.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// The names of files in `out` that differ from `files`, are missing, or are extra.
///
/// # Errors
/// The I/O error, with the path.
pub fn diff(out: &Path, files: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let mut differ = Vec::new();
    for (name, text) in files {
        if fs::read_to_string(out.join(name)).ok().as_deref() != Some(text.as_str()) {
            differ.push(name.clone());
        }
    }
    for entry in fs::read_dir(out).map_err(|e| format!("{}: {e}", out.display()))? {
        let name = entry
            .map_err(|e| e.to_string())?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !files.contains_key(&name) {
            differ.push(format!("{name} (no longer generated)"));
        }
    }
    Ok(differ)
}

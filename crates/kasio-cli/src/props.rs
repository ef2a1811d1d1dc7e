//! Client properties from the command line, a properties file and the environment.

use std::path::Path;

/// The properties in the order they apply: the file's, then `-X`, then `--bootstrap`.
pub(crate) fn collect(
    bootstrap: Option<&str>,
    file: Option<&Path>,
    flags: &[String],
) -> Result<Vec<(String, String)>, String> {
    let mut props = Vec::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            props.push(split(line).ok_or_else(|| {
                format!(
                    "{}:{}: expected key=value, got {line:?}",
                    path.display(),
                    n + 1
                )
            })?);
        }
    }
    for flag in flags {
        props.push(split(flag).ok_or_else(|| format!("-X expects key=value, got {flag:?}"))?);
    }
    if let Some(b) = bootstrap {
        props.push(("bootstrap.servers".into(), b.into()));
    }
    Ok(props)
}

fn split(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once('=')?;
    let k = k.trim();
    (!k.is_empty()).then(|| (k.to_string(), v.trim().to_string()))
}

/// Whether the properties name the brokers.
pub(crate) fn has_bootstrap(props: &[(String, String)]) -> bool {
    props.iter().any(|(k, _)| k == "bootstrap.servers")
}

//! Reading Kafka's JSON message specs: JSON with `//` comments.

use serde_json::Value;
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

/// An inclusive version range; `lo > hi` means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions {
    pub(crate) lo: i16,
    pub(crate) hi: i16,
}

impl Versions {
    pub(crate) const NONE: Versions = Versions { lo: 1, hi: 0 };

    pub(crate) fn parse(s: &str) -> Result<Versions, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Versions::NONE);
        }
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|e| format!("bad version {s:?}: {e}"))
        };
        if let Some(lo) = s.strip_suffix('+') {
            return Ok(Versions {
                lo: num(lo)?,
                hi: i16::MAX,
            });
        }
        if let Some((lo, hi)) = s.split_once('-') {
            return Ok(Versions {
                lo: num(lo)?,
                hi: num(hi)?,
            });
        }
        let v = num(s)?;
        Ok(Versions { lo: v, hi: v })
    }

    pub(crate) fn is_empty(self) -> bool {
        self.lo > self.hi
    }

    pub(crate) fn intersect(self, o: Versions) -> Versions {
        Versions {
            lo: self.lo.max(o.lo),
            hi: self.hi.min(o.hi),
        }
    }

    /// Whether `self` holds every version of `within`.
    pub(crate) fn covers(self, within: Versions) -> bool {
        within.is_empty() || (self.lo <= within.lo && self.hi >= within.hi)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    Str,
    Bytes,
    Records,
    Uuid,
    Struct(String),
    Array(Box<Ty>),
}

impl Ty {
    fn parse(s: &str) -> Ty {
        if let Some(elem) = s.strip_prefix("[]") {
            return Ty::Array(Box::new(Ty::parse(elem)));
        }
        match s {
            "bool" => Ty::Bool,
            "int8" => Ty::Int8,
            "int16" => Ty::Int16,
            "uint16" => Ty::Uint16,
            "int32" => Ty::Int32,
            "uint32" => Ty::Uint32,
            "int64" => Ty::Int64,
            "float64" => Ty::Float64,
            "string" => Ty::Str,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            "uuid" => Ty::Uuid,
            other => Ty::Struct(other.to_string()),
        }
    }

    /// Whether a null is representable for this type.
    pub(crate) fn nullable_kind(&self) -> bool {
        matches!(
            self,
            Ty::Str | Ty::Bytes | Ty::Records | Ty::Array(_) | Ty::Struct(_)
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) ty: Ty,
    pub(crate) versions: Versions,
    pub(crate) nullable: Versions,
    pub(crate) tag: Option<u32>,
    pub(crate) tagged: Versions,
    pub(crate) ignorable: bool,
    pub(crate) default: Option<String>,
    pub(crate) about: String,
    pub(crate) flexible_override: Option<Versions>,
}

#[derive(Debug, Clone)]
pub(crate) struct StructDef {
    pub(crate) name: String,
    pub(crate) about: String,
    pub(crate) fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Response,
    Header,
    Data,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) file: String,
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) api_key: Option<i16>,
    pub(crate) valid: Versions,
    pub(crate) flexible: Versions,
    pub(crate) latest_unstable: bool,
    /// The top-level struct first, then every nested and common struct.
    pub(crate) structs: Vec<StructDef>,
}

/// Removes `//` comments outside string literals.
pub(crate) fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut in_str, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for c in chars.by_ref() {
                if c == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_fields(
    list: &Value,
    structs: &mut Vec<StructDef>,
    ctx: &str,
) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    for f in list
        .as_array()
        .ok_or_else(|| format!("{ctx}: fields is not an array"))?
    {
        let name = str_of(f, "name").ok_or_else(|| format!("{ctx}: field without a name"))?;
        let ty_s = str_of(f, "type").ok_or_else(|| format!("{ctx}.{name}: no type"))?;
        let ty = Ty::parse(&ty_s);
        let versions = Versions::parse(&str_of(f, "versions").unwrap_or_else(|| "none".into()))?;
        let nullable = match str_of(f, "nullableVersions") {
            Some(s) => Versions::parse(&s)?,
            None => Versions::NONE,
        };
        let tagged = match str_of(f, "taggedVersions") {
            Some(s) => Versions::parse(&s)?,
            None => Versions::NONE,
        };
        let tag = match f.get("tag") {
            Some(Value::Number(n)) => Some(n.as_u64().ok_or("bad tag")? as u32),
            _ => None,
        };
        let flexible_override = str_of(f, "flexibleVersions")
            .map(|s| Versions::parse(&s))
            .transpose()?;
        if let Some(sub) = f.get("fields") {
            let sname = match &ty {
                Ty::Struct(n) => n.clone(),
                Ty::Array(e) => match &**e {
                    Ty::Struct(n) => n.clone(),
                    _ => return Err(format!("{ctx}.{name}: fields on a non-struct")),
                },
                _ => return Err(format!("{ctx}.{name}: fields on a non-struct")),
            };
            let fields = parse_fields(sub, structs, &sname)?;
            structs.push(StructDef {
                name: sname,
                about: str_of(f, "about").unwrap_or_default(),
                fields,
            });
        }
        out.push(Field {
            name,
            ty,
            versions,
            nullable,
            tag,
            tagged,
            ignorable: f.get("ignorable").and_then(Value::as_bool).unwrap_or(false),
            default: str_of(f, "default"),
            about: str_of(f, "about").unwrap_or_default(),
            flexible_override,
        });
    }
    Ok(out)
}

pub(crate) fn parse_spec(file: &str, text: &str) -> Result<Spec, String> {
    let v: Value =
        serde_json::from_str(&strip_comments(text)).map_err(|e| format!("{file}: {e}"))?;
    let name = str_of(&v, "name").ok_or_else(|| format!("{file}: no name"))?;
    let kind = match str_of(&v, "type").as_deref() {
        Some("request") => Kind::Request,
        Some("response") => Kind::Response,
        Some("header") => Kind::Header,
        Some("data") => Kind::Data,
        other => return Err(format!("{file}: unknown type {other:?}")),
    };
    let mut nested = Vec::new();
    let fields = parse_fields(
        v.get("fields").unwrap_or(&Value::Array(vec![])),
        &mut nested,
        &name,
    )?;
    if let Some(common) = v.get("commonStructs").and_then(Value::as_array) {
        for c in common {
            let cname = str_of(c, "name").ok_or("common struct without a name")?;
            let f = parse_fields(
                c.get("fields").unwrap_or(&Value::Array(vec![])),
                &mut nested,
                &cname,
            )?;
            nested.push(StructDef {
                name: cname,
                about: str_of(c, "about").unwrap_or_default(),
                fields: f,
            });
        }
    }
    let mut structs = vec![StructDef {
        name: name.clone(),
        about: String::new(),
        fields,
    }];
    structs.extend(nested);
    Ok(Spec {
        file: file.to_string(),
        api_key: v.get("apiKey").and_then(Value::as_i64).map(|k| k as i16),
        valid: Versions::parse(&str_of(&v, "validVersions").unwrap_or_else(|| "none".into()))?,
        flexible: Versions::parse(
            &str_of(&v, "flexibleVersions").unwrap_or_else(|| "none".into()),
        )?,
        latest_unstable: v
            .get("latestVersionUnstable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        name,
        kind,
        structs,
    })
}

/// Reads every spec from `dirs`, earlier directories first; a later directory supplies a
/// message only where the earlier ones lack it or define no valid version of it.
pub(crate) fn load(dirs: &[PathBuf]) -> Result<Vec<Spec>, String> {
    let mut by_name: BTreeMap<String, Spec> = BTreeMap::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let file = file_name(&path);
            let spec = parse_spec(&file, &text)?;
            // Requests and responses are one API by key even where Kafka renamed them.
            let key = match (spec.kind, spec.api_key) {
                (Kind::Request, Some(k)) => format!("request {k}"),
                (Kind::Response, Some(k)) => format!("response {k}"),
                _ => spec.name.clone(),
            };
            match by_name.get_mut(&key) {
                None => {
                    by_name.insert(key, spec);
                }
                Some(have) if have.valid.is_empty() && !spec.valid.is_empty() => *have = spec,
                // Newer specs dropped request header v0, which ControlledShutdown v0 (kept from
                // the older specs) still uses: a header keeps every version any spec defines.
                Some(have) if have.kind == Kind::Header && spec.valid.lo < have.valid.lo => {
                    have.valid.lo = spec.valid.lo;
                }
                Some(_) => {}
            }
        }
    }
    let mut specs: Vec<Spec> = by_name.into_values().collect();
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(specs)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

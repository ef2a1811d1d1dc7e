//! Writing one Rust module per message spec.

use crate::spec::{Field, Kind, Spec, StructDef, Ty, Versions};
use std::fmt::Write;

/// A version condition, simplified against the message's valid versions.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Always,
    Never,
    Expr(String),
}

impl Cond {
    fn of(vr: Versions, valid: Versions) -> Cond {
        let vr = vr.intersect(valid);
        if vr.is_empty() {
            Cond::Never
        } else if vr.covers(valid) {
            Cond::Always
        } else if vr.lo > valid.lo && vr.hi < valid.hi {
            if vr.lo == vr.hi {
                Cond::Expr(format!("version == {}", vr.lo))
            } else {
                Cond::Expr(format!("({}..={}).contains(&version)", vr.lo, vr.hi))
            }
        } else if vr.lo > valid.lo {
            Cond::Expr(format!("version >= {}", vr.lo))
        } else {
            Cond::Expr(format!("version <= {}", vr.hi))
        }
    }

    fn expr(&self) -> String {
        match self {
            Cond::Always => "true".into(),
            Cond::Never => "false".into(),
            Cond::Expr(e) => e.clone(),
        }
    }

    /// Wraps `body` in an `if` unless the condition always holds.
    fn guard(&self, body: &str) -> String {
        match self {
            Cond::Always => body.to_string(),
            Cond::Never => String::new(),
            Cond::Expr(e) => format!("if {e} {{ {body} }}"),
        }
    }
}

pub(crate) fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn ident(name: &str) -> String {
    let s = snake(name);
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "type",
        "unsafe", "use", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

fn doc(text: &str, fallback: &str) -> String {
    let t = text.trim();
    let t = if t.is_empty() { fallback } else { t };
    t.lines().map(|l| format!("/// {}\n", l.trim())).collect()
}

fn elem_ty(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "bool".into(),
        Ty::Int8 => "i8".into(),
        Ty::Int16 => "i16".into(),
        Ty::Uint16 => "u16".into(),
        Ty::Int32 => "i32".into(),
        Ty::Uint32 => "u32".into(),
        Ty::Int64 => "i64".into(),
        Ty::Float64 => "f64".into(),
        Ty::Str => "ByteStr".into(),
        Ty::Bytes | Ty::Records => "Bytes".into(),
        Ty::Uuid => "Uuid".into(),
        Ty::Struct(n) => n.clone(),
        Ty::Array(e) => format!("Vec<{}>", elem_ty(e)),
    }
}

/// The versions in which a field is on the wire at all, and in which it is tagged.
struct Presence {
    present: Versions,
    tagged: Versions,
    regular: Versions,
}

fn presence(f: &Field, valid: Versions) -> Presence {
    let present = f.versions.intersect(valid);
    let tagged = if f.tag.is_some() {
        f.tagged.intersect(present)
    } else {
        Versions::NONE
    };
    let regular = if tagged.is_empty() {
        present
    } else {
        Versions {
            lo: present.lo,
            hi: tagged.lo - 1,
        }
    };
    Presence {
        present,
        tagged,
        regular,
    }
}

fn nullable_type(f: &Field, valid: Versions) -> bool {
    f.ty.nullable_kind() && !f.nullable.intersect(f.versions).intersect(valid).is_empty()
}

fn field_ty(f: &Field, valid: Versions) -> String {
    let t = elem_ty(&f.ty);
    if nullable_type(f, valid) {
        format!("Option<{t}>")
    } else {
        t
    }
}

fn int_default(s: Option<&str>) -> String {
    let Some(s) = s else { return "0".into() };
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x")
        && let Ok(v) = i64::from_str_radix(hex, 16)
    {
        return v.to_string();
    }
    s.parse::<i64>()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "0".into())
}

fn default_expr(f: &Field, valid: Versions) -> String {
    let nullable = nullable_type(f, valid);
    let d = f.default.as_deref();
    if nullable && d == Some("null") {
        return "None".into();
    }
    let v = match &f.ty {
        Ty::Bool => return (d == Some("true")).to_string(),
        Ty::Int8 | Ty::Int16 | Ty::Uint16 | Ty::Int32 | Ty::Uint32 | Ty::Int64 => {
            return int_default(d);
        }
        Ty::Float64 => {
            return format!("{:?}", d.and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0));
        }
        Ty::Uuid => return "Uuid::ZERO".into(),
        Ty::Str => {
            let s = d.filter(|s| *s != "null").unwrap_or("");
            format!("ByteStr::from_static({s:?})")
        }
        Ty::Bytes | Ty::Records => "Bytes::new()".into(),
        Ty::Array(e) => format!("Vec::<{}>::new()", elem_ty(e)),
        Ty::Struct(n) => format!("{n}::default()"),
    };
    if nullable { format!("Some({v})") } else { v }
}

/// Writes the value at place `v` (of the element type) to `buf`.
fn put_stmt(ty: &Ty, v: &str, flex: &str) -> String {
    match ty {
        Ty::Bool => format!("wire::put_bool(buf, {v});"),
        Ty::Int8 => format!("buf.put_i8({v});"),
        Ty::Int16 => format!("buf.put_i16({v});"),
        Ty::Uint16 => format!("buf.put_u16({v});"),
        Ty::Int32 => format!("buf.put_i32({v});"),
        Ty::Uint32 => format!("buf.put_u32({v});"),
        Ty::Int64 => format!("buf.put_i64({v});"),
        Ty::Float64 => format!("buf.put_f64({v});"),
        Ty::Uuid => format!("wire::put_uuid(buf, &{v});"),
        Ty::Str => format!("wire::put_string(buf, &{v}, {flex})?;"),
        Ty::Bytes | Ty::Records => format!("wire::put_bytes(buf, &{v}, {flex})?;"),
        Ty::Struct(_) => format!("{v}.write(buf, version)?;"),
        Ty::Array(e) => format!(
            "wire::put_array(buf, &{v}, {flex}, |buf, e| {{ {} Ok(()) }})?;",
            put_stmt(e, "(*e)", flex)
        ),
    }
}

/// Writes the `Option` at place `v` as a nullable value.
fn put_nullable_stmt(ty: &Ty, v: &str, flex: &str) -> String {
    match ty {
        Ty::Str => format!("wire::put_nullable_string(buf, {v}.as_deref(), {flex})?;"),
        Ty::Bytes | Ty::Records => {
            format!("wire::put_nullable_bytes(buf, {v}.as_deref(), {flex})?;")
        }
        Ty::Array(e) => format!(
            "wire::put_nullable_array(buf, {v}.as_deref(), {flex}, |buf, e| {{ {} Ok(()) }})?;",
            put_stmt(e, "(*e)", flex)
        ),
        Ty::Struct(_) => format!(
            "match &{v} {{ None => buf.put_i8(-1), Some(s) => {{ buf.put_i8(1); s.write(buf, version)?; }} }}"
        ),
        _ => put_stmt(ty, v, flex),
    }
}

/// An expression reading one element-typed value; `q` ends each fallible call.
fn get_expr(ty: &Ty, flex: &str, q: &str) -> String {
    match ty {
        Ty::Bool => format!("wire::get_bool(buf){q}"),
        Ty::Int8 => format!("wire::get_i8(buf){q}"),
        Ty::Int16 => format!("wire::get_i16(buf){q}"),
        Ty::Uint16 => format!("wire::get_u16(buf){q}"),
        Ty::Int32 => format!("wire::get_i32(buf){q}"),
        Ty::Uint32 => format!("wire::get_u32(buf){q}"),
        Ty::Int64 => format!("wire::get_i64(buf){q}"),
        Ty::Float64 => format!("wire::get_f64(buf){q}"),
        Ty::Uuid => format!("wire::get_uuid(buf){q}"),
        Ty::Str => format!("wire::get_string(buf, {flex}){q}"),
        Ty::Bytes | Ty::Records => format!("wire::get_bytes(buf, {flex}){q}"),
        Ty::Struct(n) => format!("{n}::read(buf, version){q}"),
        Ty::Array(e) => format!(
            "wire::get_array(buf, {flex}, |buf| Ok({})){q}",
            get_expr(e, flex, "?")
        ),
    }
}

fn get_nullable_expr(ty: &Ty, flex: &str, q: &str) -> String {
    match ty {
        Ty::Str => format!("wire::get_nullable_string(buf, {flex}){q}"),
        Ty::Bytes | Ty::Records => format!("wire::get_nullable_bytes(buf, {flex}){q}"),
        Ty::Array(e) => {
            format!(
                "wire::get_nullable_array(buf, {flex}, |buf| Ok({})){q}",
                get_expr(e, flex, "?")
            )
        }
        Ty::Struct(n) => {
            format!(
                "if wire::get_present(buf){q} {{ Some({n}::read(buf, version){q}) }} else {{ None }}"
            )
        }
        _ => get_expr(ty, flex, q),
    }
}

fn rand_expr(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "rng.bool()".into(),
        Ty::Int8 => "rng.i8()".into(),
        Ty::Int16 => "rng.i16()".into(),
        Ty::Uint16 => "rng.u16()".into(),
        Ty::Int32 => "rng.i32()".into(),
        Ty::Uint32 => "rng.u32()".into(),
        Ty::Int64 => "rng.i64()".into(),
        Ty::Float64 => "rng.f64()".into(),
        Ty::Uuid => "rng.uuid()".into(),
        Ty::Str => "rng.byte_str()".into(),
        Ty::Bytes | Ty::Records => "rng.bytes()".into(),
        Ty::Struct(n) => format!("{n}::random(rng, version)"),
        Ty::Array(e) => format!("rng.vec(|rng| {})", rand_expr(e)),
    }
}

/// How the value of a field is written, read and randomised in the versions `within`.
struct Access {
    put: String,
    get: String,
    rand: String,
}

fn access(f: &Field, valid: Versions, within: Versions, flex: &str, q: &str) -> Access {
    let place = format!("self.{}", ident(&f.name));
    if !nullable_type(f, valid) {
        return Access {
            put: put_stmt(&f.ty, &place, flex),
            get: get_expr(&f.ty, flex, q),
            rand: rand_expr(&f.ty),
        };
    }
    let ncond = Cond::of(f.nullable, within);
    let put_null = put_nullable_stmt(&f.ty, &place, flex);
    let put_some = format!(
        "match &{place} {{ Some(x) => {{ {} }} None => return Err(EncodeError::NullNotAllowed {{ field: {:?}, version }}), }}",
        put_stmt(&f.ty, "(*x)", flex),
        f.name
    );
    let get_null = get_nullable_expr(&f.ty, flex, q);
    let get_some = format!("Some({})", get_expr(&f.ty, flex, q));
    let rand_null = format!("rng.option(|rng| {})", rand_expr(&f.ty));
    let rand_some = format!("Some({})", rand_expr(&f.ty));
    match ncond {
        Cond::Always => Access {
            put: put_null,
            get: get_null,
            rand: rand_null,
        },
        Cond::Never => Access {
            put: put_some,
            get: get_some,
            rand: rand_some,
        },
        Cond::Expr(e) => Access {
            put: format!("if {e} {{ {put_null} }} else {{ {put_some} }}"),
            get: format!("if {e} {{ {get_null} }} else {{ {get_some} }}"),
            rand: format!("if {e} {{ {rand_null} }} else {{ {rand_some} }}"),
        },
    }
}

struct Ctx<'a> {
    spec: &'a Spec,
    valid: Versions,
    flexible: Versions,
}

impl Ctx<'_> {
    fn has_flexible(&self) -> bool {
        !self.flexible.is_empty()
    }

    fn flex_expr(&self, f: &Field) -> String {
        match f.flexible_override {
            Some(o) => Cond::of(o.intersect(self.flexible), self.valid).expr(),
            None => "flexible".into(),
        }
    }
}

fn emit_struct(out: &mut String, cx: &Ctx, s: &StructDef, top: bool) {
    let valid = cx.valid;
    let about = if top {
        format!("The {} message.", cx.spec.name)
    } else {
        s.about.clone()
    };
    out.push_str(&doc(&about, &format!("The {} struct.", s.name)));
    // Not `non_exhaustive`: users build messages as struct literals ending in
    // `..Default::default()`, which also keeps them compiling as Kafka adds fields.
    out.push_str("#[derive(Debug, Clone, PartialEq)]\n");
    let _ = writeln!(out, "pub struct {} {{", s.name);
    for f in &s.fields {
        out.push_str(&doc(&f.about, &format!("The {} field.", f.name)));
        let _ = writeln!(out, "pub {}: {},", ident(&f.name), field_ty(f, valid));
    }
    if cx.has_flexible() {
        out.push_str(
            "/// Tagged fields kasio does not know, kept so the message re-encodes intact.\n",
        );
        out.push_str("pub unknown_tagged_fields: UnknownTaggedFields,\n");
    }
    out.push_str("}\n\n");

    let _ = writeln!(
        out,
        "impl Default for {} {{ fn default() -> Self {{ Self {{",
        s.name
    );
    for f in &s.fields {
        let _ = writeln!(out, "{}: {},", ident(&f.name), default_expr(f, valid));
    }
    if cx.has_flexible() {
        out.push_str("unknown_tagged_fields: Vec::new(),\n");
    }
    out.push_str("} } }\n\n");

    let flex_cond = Cond::of(cx.flexible, valid).expr();
    let tagged: Vec<&Field> = {
        let mut t: Vec<&Field> = s
            .fields
            .iter()
            .filter(|f| !presence(f, valid).tagged.is_empty())
            .collect();
        t.sort_by_key(|f| f.tag);
        t
    };

    // write
    let _ = writeln!(out, "impl {} {{", s.name);
    out.push_str(
        "pub(crate) fn write(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {\n",
    );
    let _ = writeln!(out, "let flexible = {flex_cond};");
    for f in &s.fields {
        let p = presence(f, valid);
        let name = ident(&f.name);
        let flex = cx.flex_expr(f);
        let reg = Cond::of(p.regular, valid);
        if reg != Cond::Never {
            let a = access(f, valid, p.regular, &flex, "?");
            out.push_str(&reg.guard(&a.put));
            out.push('\n');
        }
        let pres = Cond::of(p.present, valid);
        if pres != Cond::Always && !f.ignorable {
            let absent = match &pres {
                Cond::Never => String::new(),
                c => format!("!({}) && ", c.expr()),
            };
            let _ = writeln!(
                out,
                "if {absent}self.{name} != {} {{ return Err(EncodeError::FieldNotInVersion {{ field: {:?}, version }}); }}",
                default_expr(f, valid),
                f.name
            );
        }
    }
    if cx.has_flexible() {
        if tagged.is_empty() {
            out.push_str(
                "wire::put_unknown_tagged(buf, &self.unknown_tagged_fields, flexible, version)?;\n",
            );
        } else {
            out.push_str("if flexible {\nlet mut tagged = wire::TaggedWriter::new(&self.unknown_tagged_fields);\n");
            for f in &tagged {
                let p = presence(f, valid);
                let tc = Cond::of(p.tagged, valid);
                let a = access(f, valid, p.tagged, "true", "?");
                let name = ident(&f.name);
                let cond = match &tc {
                    Cond::Always => String::new(),
                    c => format!("{} && ", c.expr()),
                };
                let _ = writeln!(
                    out,
                    "if {cond}self.{name} != {} {{ tagged.field({}, |buf| {{ {} Ok(()) }})?; }}",
                    default_expr(f, valid),
                    f.tag.unwrap_or_default(),
                    a.put
                );
            }
            out.push_str(
                "tagged.finish(buf)?;\n} else if !self.unknown_tagged_fields.is_empty() {\n",
            );
            out.push_str("return Err(EncodeError::TaggedFieldsNotInVersion { version });\n}\n");
        }
    }
    out.push_str("Ok(())\n}\n\n");

    // read
    out.push_str(
        "pub(crate) fn read(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {\n",
    );
    let _ = writeln!(out, "let flexible = {flex_cond};");
    out.push_str("let mut this = Self::default();\n");
    for f in &s.fields {
        let p = presence(f, valid);
        let reg = Cond::of(p.regular, valid);
        if reg == Cond::Never {
            continue;
        }
        let q = format!(".map_err(at({:?}))?", f.name);
        let a = access(f, valid, p.regular, &cx.flex_expr(f), &q);
        out.push_str(&reg.guard(&format!("this.{} = {};", ident(&f.name), a.get)));
        out.push('\n');
    }
    if cx.has_flexible() {
        if tagged.is_empty() {
            out.push_str("if flexible { wire::get_unknown_tagged(buf, &mut this.unknown_tagged_fields)?; }\n");
        } else {
            out.push_str("if flexible {\nlet n = wire::get_uvarint(buf)?;\nfor _ in 0..n {\n");
            out.push_str("let (tag, data) = wire::get_tagged_field(buf)?;\nmatch tag {\n");
            for f in &tagged {
                let p = presence(f, valid);
                let tc = Cond::of(p.tagged, valid);
                let a = access(f, valid, p.tagged, "true", "?");
                let guard = match &tc {
                    Cond::Always => String::new(),
                    c => format!(" if {}", c.expr()),
                };
                let _ = writeln!(
                    out,
                    "{}{guard} => {{ this.{} = wire::decode_tagged(data, |buf| Ok({})).map_err(at({:?}))?; }}",
                    f.tag.unwrap_or_default(),
                    ident(&f.name),
                    a.get,
                    f.name
                );
            }
            out.push_str(
                "_ => this.unknown_tagged_fields.push(RawTaggedField { tag, data }),\n}\n}\n}\n",
            );
        }
    }
    out.push_str("Ok(this)\n}\n}\n\n");

    // random
    out.push_str("#[cfg(any(test, feature = \"_random\"))]\n");
    let _ = writeln!(out, "impl crate::random::Random for {} {{", s.name);
    out.push_str("fn random(rng: &mut crate::random::Rng, version: i16) -> Self {\n");
    let _ = writeln!(out, "let flexible = {flex_cond};");
    out.push_str("let mut this = Self::default();\n");
    for f in &s.fields {
        let p = presence(f, valid);
        let name = ident(&f.name);
        let reg = Cond::of(p.regular, valid);
        if reg != Cond::Never {
            let a = access(f, valid, p.regular, "flexible", "?");
            out.push_str(&reg.guard(&format!("this.{name} = {};", a.rand)));
            out.push('\n');
        }
        let tc = Cond::of(p.tagged, valid);
        if tc != Cond::Never {
            let a = access(f, valid, p.tagged, "true", "?");
            let cond = match &tc {
                Cond::Always => String::new(),
                c => format!("{} && ", c.expr()),
            };
            let _ = writeln!(out, "if {cond}rng.bool() {{ this.{name} = {}; }}", a.rand);
        }
    }
    if cx.has_flexible() {
        out.push_str("if flexible { this.unknown_tagged_fields = rng.unknown_tagged(); }\n");
    }
    out.push_str("this\n}\n}\n\n");

    if top {
        emit_top_impls(out, cx);
    }
}

fn emit_top_impls(out: &mut String, cx: &Ctx) {
    let spec = cx.spec;
    let name = &spec.name;
    let (lo, hi) = (cx.valid.lo, cx.valid.hi);
    let _ = write!(
        out,
        "impl Encode for {name} {{
    fn encode(&self, version: i16, buf: &mut BytesMut) -> Result<(), EncodeError> {{
        if !<Self as Message>::VERSIONS.contains(version) {{
            return Err(EncodeError::UnsupportedVersion {{ message: {name:?}, version }});
        }}
        let start = buf.len();
        let result = self.write(buf, version);
        if result.is_err() {{ buf.truncate(start); }}
        result
    }}
}}

impl Decode for {name} {{
    fn decode(version: i16, buf: &mut Bytes) -> Result<Self, DecodeError> {{
        if !<Self as Message>::VERSIONS.contains(version) {{
            return Err(DecodeError::new(DecodeErrorKind::UnsupportedVersion {{ version }}));
        }}
        Self::read(buf, version)
    }}
}}

impl Message for {name} {{
    const NAME: &'static str = {name:?};
    const VERSIONS: VersionRange = VersionRange::new({lo}, {hi});
    const FLEXIBLE_FROM: Option<i16> = {};
}}
",
        if cx.has_flexible() {
            format!("Some({})", cx.flexible.lo)
        } else {
            "None".into()
        }
    );
    match spec.kind {
        Kind::Request => {
            let api = api_name(&spec.name);
            let _ = writeln!(
                out,
                "\nimpl Request for {name} {{ const API_KEY: ApiKey = ApiKey::{api}; type Response = super::{api}Response; }}"
            );
        }
        Kind::Response => {
            let _ = writeln!(
                out,
                "\nimpl Response for {name} {{ const API_KEY: ApiKey = ApiKey::{}; }}",
                api_name(name)
            );
        }
        Kind::Header | Kind::Data => {}
    }
}

/// `FetchRequest` → `Fetch`.
pub(crate) fn api_name(message: &str) -> String {
    message
        .trim_end_matches("Request")
        .trim_end_matches("Response")
        .to_string()
}

pub(crate) fn module_name(spec: &Spec) -> String {
    snake(&spec.name)
}

/// The module for one spec.
pub(crate) fn message_module(spec: &Spec) -> String {
    let valid = spec.valid;
    let cx = Ctx {
        spec,
        valid,
        flexible: spec.flexible.intersect(valid),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! `{}`: generated by kasio-codegen from Kafka's `{}`. Do not edit.\n",
        spec.name, spec.file
    );
    out.push_str(
        "use crate::{ByteStr, Uuid, wire, error::{DecodeError, DecodeErrorKind, EncodeError, at}, \
         message::{Encode, Decode, Message, VersionRange}, tagged::{RawTaggedField, UnknownTaggedFields}};\n",
    );
    match spec.kind {
        Kind::Request => out.push_str("use crate::{ApiKey, message::Request};\n"),
        Kind::Response => out.push_str("use crate::{ApiKey, message::Response};\n"),
        _ => {}
    }
    out.push_str("use bytes::{BufMut, Bytes, BytesMut};\n\n");
    let mut seen = std::collections::HashSet::new();
    for (i, s) in spec.structs.iter().enumerate() {
        if !seen.insert(s.name.clone()) {
            continue;
        }
        emit_struct(&mut out, &cx, s, i == 0);
    }
    out
}

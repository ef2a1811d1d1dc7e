//! The messages a `.proto` file declares, and the index path of each: what Confluent's
//! framing writes in front of a Protobuf payload to say which message it holds.
//!
//! Only declarations are read (package, messages, groups and the blocks around them),
//! not fields or options: enough to name every message and place it, without a
//! Protobuf compiler.

/// How deep messages may nest before a file is refused (as `wire::MAX_MESSAGE_DEPTH`).
const MAX_NESTING: usize = crate::wire::MAX_MESSAGE_DEPTH;

/// The messages of one `.proto` file (its text, as registered in a Schema Registry),
/// each with its full name and its index path: its index among the file's top-level
/// messages, then among the messages nested in each enclosing one.
///
/// ```
/// use kasio_serde::ProtoFile;
/// let file = ProtoFile::parse(r#"
///     syntax = "proto3";
///     package shop;
///     message Header { string source = 1; }
///     enum Kind { KIND_UNSPECIFIED = 0; }
///     message Order {
///         message Line { string sku = 1; }   // Order.Line
///         repeated Line lines = 1;
///     }
/// "#)?;
/// assert_eq!(file.path("shop.Order"), Some(&[1][..]));
/// assert_eq!(file.path("shop.Order.Line"), Some(&[1, 0][..]));
/// assert_eq!(file.path("shop.Kind"), None);
/// # Ok::<(), kasio_serde::ProtoFileError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProtoFile {
    package: Option<String>,
    messages: Vec<(String, Vec<i32>)>,
}

/// A `.proto` text whose declarations could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoFileError {
    /// A `}` with no block open, or the text ended inside one; the byte offset.
    Unbalanced(usize),
    /// A string or a block comment that does not end; the byte offset where it began.
    Unterminated(usize),
    /// Messages nested deeper than the cap.
    TooDeep,
}

impl std::fmt::Display for ProtoFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unbalanced(at) => write!(f, "unbalanced braces at byte {at}"),
            Self::Unterminated(at) => {
                write!(f, "a string or comment starting at byte {at} does not end")
            }
            Self::TooDeep => write!(f, "messages nested deeper than {MAX_NESTING}"),
        }
    }
}

impl std::error::Error for ProtoFileError {}

/// What a `{` opened.
enum Block {
    /// A message (or a group): its full name, its path, and how many messages it holds
    /// so far.
    Message {
        full: String,
        path: Vec<i32>,
        children: i32,
    },
    /// Anything else: an enum, a service, a oneof, an extend, an option's value.
    Other,
}

impl ProtoFile {
    /// Reads the declarations of a `.proto` file's text.
    ///
    /// # Errors
    /// [`ProtoFileError`] if braces, strings or comments do not balance.
    pub fn parse(text: &str) -> Result<Self, ProtoFileError> {
        let tokens = tokens(text)?;
        let mut file = Self::default();
        let mut top: i32 = 0;
        let mut blocks: Vec<Block> = Vec::new();
        // A message or group whose `{` is still to come.
        let mut pending: Option<String> = None;
        let mut i = 0;
        while let Some(&(at, token)) = tokens.get(i) {
            let next = |k: usize| tokens.get(i + k).map(|&(_, t)| t);
            match token {
                "package" if blocks.is_empty() => {
                    if let Some(name) = next(1).filter(|t| is_ident(t)) {
                        file.package = Some(name.to_owned());
                        i += 1;
                    }
                }
                "message" if next(2) == Some("{") && next(1).is_some_and(is_name) => {
                    pending = next(1).map(str::to_owned);
                    i += 1;
                }
                // proto2's `repeated group Result = 1 { ... }` declares a message too.
                "group" if next(2) == Some("=") && next(1).is_some_and(is_name) => {
                    pending = next(1).map(str::to_owned);
                    i += 1;
                }
                ";" => pending = None,
                "{" => match pending.take() {
                    Some(name) => {
                        let depth = blocks
                            .iter()
                            .filter(|b| matches!(b, Block::Message { .. }))
                            .count();
                        if depth >= MAX_NESTING {
                            return Err(ProtoFileError::TooDeep);
                        }
                        // A group in a oneof still belongs to the enclosing message.
                        let parent = blocks.iter_mut().rev().find_map(|b| match b {
                            Block::Message {
                                full,
                                path,
                                children,
                            } => Some((full.as_str(), path.as_slice(), children)),
                            Block::Other => None,
                        });
                        let (mut full, mut path, index) = match parent {
                            Some((full, path, children)) => {
                                (full.to_owned(), path.to_vec(), children)
                            }
                            None => (
                                file.package.clone().unwrap_or_default(),
                                Vec::new(),
                                &mut top,
                            ),
                        };
                        path.push(*index);
                        *index += 1;
                        push_name(&mut full, &name);
                        file.messages.push((full.clone(), path.clone()));
                        blocks.push(Block::Message {
                            full,
                            path,
                            children: 0,
                        });
                    }
                    None => blocks.push(Block::Other),
                },
                "}" => {
                    if blocks.pop().is_none() {
                        return Err(ProtoFileError::Unbalanced(at));
                    }
                    pending = None;
                }
                _ => {}
            }
            i += 1;
        }
        if blocks.is_empty() {
            Ok(file)
        } else {
            Err(ProtoFileError::Unbalanced(text.len()))
        }
    }

    /// The path of the message whose full name (`package.Outer.Inner`) is `name`.
    #[must_use]
    pub fn path(&self, name: &str) -> Option<&[i32]> {
        let name = name.strip_prefix('.').unwrap_or(name);
        self.messages
            .iter()
            .find(|(full, _)| full == name)
            .map(|(_, path)| path.as_slice())
    }

    /// The full name of the message at `path`.
    #[must_use]
    pub fn name(&self, path: &[i32]) -> Option<&str> {
        self.messages
            .iter()
            .find(|(_, p)| p == path)
            .map(|(full, _)| full.as_str())
    }

    /// The file's package, if it declares one.
    #[must_use]
    pub fn package(&self) -> Option<&str> {
        self.package.as_deref()
    }

    /// Every message, in declaration order, with its path.
    pub fn messages(&self) -> impl Iterator<Item = (&str, &[i32])> {
        self.messages
            .iter()
            .map(|(name, path)| (name.as_str(), path.as_slice()))
    }
}

fn push_name(full: &mut String, name: &str) {
    if !full.is_empty() {
        full.push('.');
    }
    full.push_str(name);
}

/// A message's own name: one identifier, no dots.
fn is_name(token: &str) -> bool {
    is_ident(token) && !token.contains('.')
}

/// An identifier, perhaps dotted (a package's name).
fn is_ident(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

/// The text's tokens with their byte offsets: identifiers (dotted names whole), numbers
/// and single punctuation characters; comments and strings are skipped.
fn tokens(text: &str) -> Result<Vec<(usize, &str)>, ProtoFileError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while bytes.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .ok_or(ProtoFileError::Unterminated(i))?;
                i += 2 + end + 2;
            }
            b'"' | b'\'' => {
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None | Some(b'\n') => return Err(ProtoFileError::Unterminated(start)),
                        Some(b'\\') => i += 2,
                        Some(&c) if c == b => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
                {
                    i += 1;
                }
                out.push((start, &text[start..i]));
            }
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                // One character, whole (it may be multi-byte outside ASCII).
                let len = text[i..].chars().next().map_or(1, char::len_utf8);
                out.push((i, &text[i..i + len]));
                i += len;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_groups_oneofs_and_comments() {
        let file = ProtoFile::parse(
            r#"
            // message Fake {
            /* message AlsoFake { */
            syntax = "proto2";
            package a.b;
            option java_package = "message X {";
            message First {
              optional string message = 1;
              oneof choice {
                group Picked = 2 { optional int32 n = 3; }
              }
              enum E { A = 0; }
              message Inner { message Deep {} }
              extensions 100 to 200;
            }
            service S { rpc Call (First) returns (First) { option (x) = { a: 1 }; } }
            message Second {}
            "#,
        )
        .unwrap();
        let all: Vec<_> = file.messages().collect();
        assert_eq!(
            all,
            [
                ("a.b.First", &[0][..]),
                ("a.b.First.Picked", &[0, 0][..]),
                ("a.b.First.Inner", &[0, 1][..]),
                ("a.b.First.Inner.Deep", &[0, 1, 0][..]),
                ("a.b.Second", &[1][..]),
            ]
        );
        assert_eq!(file.package(), Some("a.b"));
        assert_eq!(file.name(&[0, 1, 0]), Some("a.b.First.Inner.Deep"));
        assert_eq!(file.path(".a.b.Second"), Some(&[1][..]));
    }

    #[test]
    fn no_package() {
        let file =
            ProtoFile::parse("message A { message B {} } message C {} message A.B {}").unwrap();
        assert_eq!(file.path("A.B"), Some(&[0, 0][..]));
        assert_eq!(file.path("C"), Some(&[1][..]));
    }

    #[test]
    fn broken_text_is_an_error() {
        assert_eq!(
            ProtoFile::parse("message A {"),
            Err(ProtoFileError::Unbalanced(11))
        );
        assert_eq!(ProtoFile::parse("}"), Err(ProtoFileError::Unbalanced(0)));
        assert_eq!(
            ProtoFile::parse("/* open"),
            Err(ProtoFileError::Unterminated(0))
        );
        assert_eq!(
            ProtoFile::parse("option x = \"open"),
            Err(ProtoFileError::Unterminated(11))
        );
        let deep = "message A {".repeat(MAX_NESTING + 1) + &"}".repeat(MAX_NESTING + 1);
        assert_eq!(ProtoFile::parse(&deep), Err(ProtoFileError::TooDeep));
    }

    #[test]
    fn any_text_is_an_answer_not_a_panic() {
        for text in [
            "\u{e9}\"",
            "'\\",
            "/*",
            "message",
            "group g = {",
            "{}}",
            "\\\\",
        ] {
            let _ = ProtoFile::parse(text);
        }
    }
}

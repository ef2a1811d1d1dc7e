//! The registry client against a scripted server, in virtual time: merging, caching,
//! retries and their backoff, timeouts, caps and hostile answers. No sockets, no clock.

#![allow(clippy::unwrap_used)]

use kasio_core::{Client, CloseReason, ConnId, ConnectAction};
use kasio_registry::{Answer, CallId, Registry, RegistryConfig, RegistryError, Request, Schema};
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

/// What the scripted server does with one request (or a dial, for `Refuse`).
#[derive(Debug, Clone)]
enum Reply {
    /// Answers these bytes.
    Bytes(Vec<u8>),
    /// Answers status and JSON body.
    Json(u16, String),
    /// Closes the connection without a word.
    Close,
    /// Never answers.
    Silence,
}

struct World {
    registry: Registry,
    now: Instant,
    start: Instant,
    open: HashSet<ConnId>,
    /// Request heads (method and target) in order.
    seen: Vec<String>,
    /// Each request's whole text.
    raw: Vec<String>,
    refuse_dials: bool,
    pending: HashMap<ConnId, Vec<u8>>,
}

fn json(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl World {
    fn new(props: &[(&str, &str)]) -> Self {
        let now = Instant::now();
        let config = RegistryConfig::from_properties(props.iter().copied()).unwrap();
        Self {
            registry: Registry::new(config, now, 42).unwrap(),
            now,
            start: now,
            open: HashSet::new(),
            seen: Vec::new(),
            raw: Vec::new(),
            refuse_dials: false,
            pending: HashMap::new(),
        }
    }

    /// Runs until every call in `calls` is answered, the server replying with `serve`;
    /// jumps the clock to each deadline when nothing else can happen.
    fn run(
        &mut self,
        calls: &[CallId],
        mut serve: impl FnMut(&str) -> Reply,
    ) -> HashMap<CallId, Result<Answer, RegistryError>> {
        let mut answers = HashMap::new();
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(action) = self.registry.poll_connect() {
                moved = true;
                match action {
                    ConnectAction::Open { conn, .. } if self.refuse_dials => {
                        self.registry.handle_closed(
                            conn,
                            CloseReason::ConnectFailed("refused".into()),
                            self.now,
                        );
                    }
                    ConnectAction::Open { conn, .. } => {
                        self.open.insert(conn);
                        self.registry.handle_connected(conn, self.now);
                    }
                    ConnectAction::Close { conn } => {
                        self.open.remove(&conn);
                        self.pending.remove(&conn);
                    }
                }
            }
            while let Some(t) = self.registry.poll_transmit() {
                moved = true;
                assert!(self.open.contains(&t.conn), "wrote to a closed connection");
                let buf = self.pending.entry(t.conn).or_default();
                buf.extend_from_slice(&t.data);
                // One whole request: head, and the body its Content-Length gives.
                let text = String::from_utf8(buf.clone()).unwrap();
                let Some(head_end) = text.find("\r\n\r\n") else {
                    continue;
                };
                let length: usize = text[..head_end]
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |n| n.parse().unwrap());
                if buf.len() < head_end + 4 + length {
                    continue;
                }
                self.pending.remove(&t.conn);
                let head = text.lines().next().unwrap().to_string();
                self.seen.push(head.clone());
                self.raw.push(text);
                match serve(&head) {
                    Reply::Bytes(b) => self.registry.handle_input(t.conn, &b, self.now),
                    Reply::Json(status, body) => {
                        self.registry
                            .handle_input(t.conn, &json(status, &body), self.now);
                    }
                    Reply::Close => {
                        self.open.remove(&t.conn);
                        self.registry
                            .handle_closed(t.conn, CloseReason::PeerClosed, self.now);
                    }
                    Reply::Silence => {}
                }
            }
            while let Some((id, answer)) = self.registry.poll_answer() {
                moved = true;
                answers.insert(id, answer);
            }
            if calls.iter().all(|c| answers.contains_key(c)) {
                return answers;
            }
            let deadline = self.registry.poll_timeout();
            if !moved {
                let at = deadline
                    .expect("calls under way but no deadline: a hang")
                    .at;
                self.now = self.now.max(at);
                self.registry.handle_timeout(self.now);
            }
        }
        panic!("no end after 10,000 steps: a livelock");
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

const URL: (&str, &str) = ("url", "http://sr:8081/apis/ccompat/v7");

#[test]
fn concurrent_misses_for_one_id_are_one_request_and_then_a_cache_hit() {
    let mut w = World::new(&[URL]);
    let calls: Vec<CallId> = (0..4)
        .map(|_| w.registry.request(Request::SchemaById { id: 7 }, w.now))
        .collect();
    let answers = w.run(&calls, |_| {
        Reply::Json(200, r#"{"schema":"\"long\""}"#.into())
    });
    assert_eq!(w.seen, ["GET /apis/ccompat/v7/schemas/ids/7 HTTP/1.1"]);
    for c in &calls {
        assert!(matches!(&answers[c], Ok(Answer::Schema(s)) if s.text == "\"long\""));
    }
    let again = w.registry.request(Request::SchemaById { id: 7 }, w.now);
    w.run(&[again], |_| panic!("a cached schema asked for again"));
    assert_eq!(w.registry.requests_sent(), 1);
    assert_eq!(w.registry.schema(7).unwrap().text, "\"long\"");
}

#[test]
fn registering_twice_asks_once_and_the_id_is_cached() {
    let mut w = World::new(&[URL, ("basic.auth.user.info", "alice:pw")]);
    let schema = Schema::avro(r#"{"type":"string"}"#);
    let register = |w: &mut World| {
        w.registry.request(
            Request::Register {
                subject: "t-value".into(),
                schema: schema.clone(),
                normalize: false,
            },
            w.now,
        )
    };
    let first = register(&mut w);
    let answers = w.run(&[first], |_| Reply::Json(200, r#"{"id":100042}"#.into()));
    assert_eq!(answers[&first], Ok(Answer::Id(100_042)));
    assert!(
        w.raw[0].contains("Authorization: Basic YWxpY2U6cHc=\r\n"),
        "{}",
        w.raw[0]
    );
    assert!(
        w.raw[0].ends_with(r#"{"schema":"{\"type\":\"string\"}"}"#),
        "{}",
        w.raw[0]
    );
    let second = register(&mut w);
    w.run(&[second], |_| panic!("asked again"));
    assert_eq!(w.registry.cached_id("t-value", &schema), Some(100_042));
    assert_eq!(w.registry.schema(100_042).unwrap().text, schema.text);
}

#[test]
fn a_registry_answering_500_for_a_while_is_retried_with_growing_backoff() {
    let mut w = World::new(&[
        URL,
        ("retries.wait.ms", "1000"),
        ("retries.max.wait.ms", "20000"),
    ]);
    let call = w.registry.request(Request::SchemaById { id: 1 }, w.now);
    let mut n = 0;
    let answers = w.run(&[call], |_| {
        n += 1;
        if n < 4 {
            Reply::Json(500, r#"{"error_code":50001,"message":"store down"}"#.into())
        } else {
            Reply::Json(200, r#"{"schema":"\"int\""}"#.into())
        }
    });
    assert!(answers[&call].is_ok());
    assert_eq!(w.seen.len(), 4);
    // Three backoffs of at most 1 s, 2 s and 4 s.
    assert!(w.elapsed() <= Duration::from_secs(7), "{:?}", w.elapsed());
}

#[test]
fn retries_end_with_the_registrys_own_error() {
    let mut w = World::new(&[URL, ("max.retries", "2")]);
    let call = w.registry.request(Request::SchemaById { id: 1 }, w.now);
    let answers = w.run(&[call], |_| {
        Reply::Json(503, r#"{"error_code":50301,"message":"busy"}"#.into())
    });
    assert_eq!(
        answers[&call],
        Err(RegistryError::Api {
            status: 503,
            error_code: 50301,
            message: "busy".into()
        })
    );
    assert_eq!(w.seen.len(), 3);
}

#[test]
fn client_errors_are_not_retried() {
    let mut w = World::new(&[URL]);
    let call = w.registry.request(
        Request::Register {
            subject: "s".into(),
            schema: Schema::avro("\"int\""),
            normalize: false,
        },
        w.now,
    );
    let answers = w.run(&[call], |_| {
        Reply::Json(
            409,
            r#"{"error_code":409,"message":"Schema being registered is incompatible"}"#.into(),
        )
    });
    let err = answers[&call].clone().unwrap_err();
    assert!(err.is_incompatible() && !err.is_retriable(), "{err}");
    assert_eq!(w.seen.len(), 1);
}

#[test]
fn a_registry_that_is_down_ends_each_call_after_its_retries_across_urls() {
    let mut w = World::new(&[("url", "http://a:1,http://b:2"), ("max.retries", "3")]);
    w.refuse_dials = true;
    let call = w.registry.request(Request::Subjects, w.now);
    let answers = w.run(&[call], |_| unreachable!());
    assert!(
        matches!(&answers[&call], Err(RegistryError::Unreachable(why)) if why.contains("refused"))
    );
    assert!(w.elapsed() < Duration::from_secs(8));
}

#[test]
fn a_silent_registry_times_out_and_no_call_hangs() {
    let mut w = World::new(&[URL, ("request.timeout.ms", "500"), ("max.retries", "1")]);
    let call = w.registry.request(Request::SchemaById { id: 3 }, w.now);
    let answers = w.run(&[call], |_| Reply::Silence);
    assert_eq!(answers[&call], Err(RegistryError::Timeout));
    assert_eq!(w.seen.len(), 2);
    assert!(w.open.is_empty(), "timed-out connections are closed");
}

#[test]
fn an_answer_larger_than_the_cap_is_refused_without_reading_it() {
    let mut w = World::new(&[URL, ("max.response.bytes", "4096")]);
    let call = w.registry.request(Request::SchemaById { id: 3 }, w.now);
    let answers = w.run(&[call], |_| {
        Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{".to_vec())
    });
    assert_eq!(answers[&call], Err(RegistryError::TooLarge { limit: 4096 }));
    let chunked = w.registry.request(Request::SchemaById { id: 4 }, w.now);
    let mut huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        huge.extend_from_slice(b"400\r\n");
        huge.extend_from_slice(&[b' '; 0x400]);
        huge.extend_from_slice(b"\r\n");
    }
    let answers = w.run(&[chunked], |_| Reply::Bytes(huge.clone()));
    assert_eq!(
        answers[&chunked],
        Err(RegistryError::TooLarge { limit: 4096 })
    );
}

#[test]
fn a_kept_alive_connection_closed_under_a_request_costs_no_retry() {
    let mut w = World::new(&[URL, ("max.retries", "0")]);
    let first = w.registry.request(Request::Subjects, w.now);
    w.run(&[first], |_| Reply::Json(200, r#"["a"]"#.into()));
    let second = w.registry.request(
        Request::Versions {
            subject: "a".into(),
        },
        w.now,
    );
    let mut n = 0;
    let answers = w.run(&[second], |_| {
        n += 1;
        if n == 1 {
            Reply::Close
        } else {
            Reply::Json(200, "[1,2]".into())
        }
    });
    assert_eq!(answers[&second], Ok(Answer::Versions(vec![1, 2])));
}

#[test]
fn connections_are_reused_and_bounded() {
    let mut w = World::new(&[URL, ("max.connections", "2")]);
    let calls: Vec<CallId> = (0..10)
        .map(|id| w.registry.request(Request::SchemaById { id }, w.now))
        .collect();
    let mut dials = 0;
    let answers = w.run(&calls, |_| {
        Reply::Json(200, r#"{"schema":"\"int\""}"#.into())
    });
    assert_eq!(answers.len(), 10);
    while w.registry.poll_connect().is_some() {
        dials += 1;
    }
    assert_eq!(dials, 0);
    assert!(w.open.len() <= 2, "{} connections", w.open.len());
}

#[test]
fn close_ends_every_call() {
    let mut w = World::new(&[URL]);
    let call = w.registry.request(Request::Subjects, w.now);
    w.registry.close();
    assert_eq!(
        w.registry.poll_answer(),
        Some((call, Err(RegistryError::Closed)))
    );
    let later = w.registry.request(Request::Subjects, w.now);
    assert_eq!(
        w.registry.poll_answer(),
        Some((later, Err(RegistryError::Closed)))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Whatever the registry answers, every call ends (answered or failed), without a
    /// panic or a hang.
    #[test]
    fn any_answer_ends_the_call(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        status in 100u16..600,
        framed in proptest::prelude::any::<bool>(),
    ) {
        let mut w = World::new(&[URL, ("max.retries", "1"), ("request.timeout.ms", "100")]);
        let call = w.registry.request(Request::SchemaById { id: 1 }, w.now);
        let reply = if framed {
            let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            head.extend_from_slice(&body);
            head
        } else {
            body
        };
        let answers = w.run(&[call], |_| Reply::Bytes(reply.clone()));
        proptest::prop_assert!(answers.contains_key(&call));
    }
}

/// What `GET /subjects/{s}/versions/{v}` answers for a schema referencing `refs`.
fn version_body(
    subject: &str,
    version: i32,
    id: u32,
    text: &str,
    refs: &[(&str, &str, i32)],
) -> String {
    serde_json::json!({
        "subject": subject, "version": version, "id": id, "schema": text,
        "references": refs.iter().map(|(n, s, v)| serde_json::json!({"name": n, "subject": s, "version": v})).collect::<Vec<_>>(),
    })
    .to_string()
}

#[test]
fn a_schema_by_id_is_answered_once_its_references_are_cached() {
    let mut w = World::new(&[URL]);
    // 1 imports a (which imports b) and b: four requests, b fetched once.
    let calls: Vec<CallId> = (0..3)
        .map(|_| w.registry.request(Request::SchemaById { id: 1 }, w.now))
        .collect();
    let answers = w.run(&calls, |head| {
        let body = if head.contains("/schemas/ids/1 ") {
            serde_json::json!({"schema": "{}", "references": [
                {"name": "a.json", "subject": "a", "version": 1},
                {"name": "b.json", "subject": "b", "version": 2},
            ]})
            .to_string()
        } else if head.contains("/subjects/a/versions/1 ") {
            version_body("a", 1, 10, "{\"a\":1}", &[("b.json", "b", 2)])
        } else if head.contains("/subjects/b/versions/2 ") {
            version_body("b", 2, 11, "{\"b\":2}", &[])
        } else {
            panic!("asked {head}")
        };
        Reply::Json(200, body)
    });
    for c in &calls {
        assert!(matches!(&answers[c], Ok(Answer::Schema(s)) if s.references.len() == 2));
    }
    assert_eq!(w.seen.len(), 3, "{:?}", w.seen);
    assert_eq!(w.registry.referenced("a", 1).unwrap().text, "{\"a\":1}");
    assert_eq!(w.registry.referenced("b", 2).unwrap().text, "{\"b\":2}");
    let again = w.registry.request(Request::SchemaById { id: 1 }, w.now);
    w.run(&[again], |_| panic!("a cached schema asked for again"));
}

#[test]
fn a_reference_that_fails_fails_the_fetch_and_cycles_end() {
    let mut w = World::new(&[URL, ("max.retries", "0")]);
    let call = w.registry.request(Request::SchemaById { id: 1 }, w.now);
    let answers = w.run(&[call], |head| {
        if head.contains("/schemas/ids/1 ") {
            Reply::Json(
                200,
                r#"{"schema":"{}","references":[{"name":"x","subject":"gone","version":1}]}"#
                    .into(),
            )
        } else {
            Reply::Json(
                404,
                r#"{"error_code":40402,"message":"Version not found"}"#.into(),
            )
        }
    });
    assert!(
        matches!(&answers[&call], Err(e) if e.error_code() == Some(40402)),
        "{answers:?}"
    );

    // a imports b and b imports a: each is fetched once, and the call ends.
    let mut w = World::new(&[URL]);
    let call = w.registry.request(Request::SchemaById { id: 1 }, w.now);
    let answers = w.run(&[call], |head| {
        let body = if head.contains("/schemas/ids/1 ") {
            r#"{"schema":"{}","references":[{"name":"a","subject":"a","version":1}]}"#.into()
        } else if head.contains("/subjects/a/") {
            version_body("a", 1, 10, "{}", &[("b", "b", 1)])
        } else {
            version_body("b", 1, 11, "{}", &[("a", "a", 1)])
        };
        Reply::Json(200, body)
    });
    assert!(answers[&call].is_ok());
    assert_eq!(w.seen.len(), 3, "{:?}", w.seen);

    // An endless chain stops at the depth cap.
    let mut w = World::new(&[URL]);
    let call = w.registry.request(Request::SchemaById { id: 1 }, w.now);
    let mut n = 0;
    let answers = w.run(&[call], |_| {
        n += 1;
        Reply::Json(
            200,
            version_body(
                &format!("s{n}"),
                1,
                n,
                "{}",
                &[(&format!("s{}", n + 1), &format!("s{}", n + 1), 1)],
            ),
        )
    });
    assert!(
        matches!(&answers[&call], Err(RegistryError::Malformed(why)) if why.contains("deeper")),
        "{answers:?}"
    );
    assert_eq!(n as u8, kasio_registry::MAX_REFERENCE_DEPTH + 1);
}

//! SASL against kasio-mock's SASL listener in virtual time: every mechanism authenticates
//! the producer, consumer and admin client; wrong credentials fail fast and for good;
//! sessions with a lifetime are renewed on their connections (KIP-368).
#![allow(clippy::unwrap_used)]

mod pair;

use kasio_core::{AdminError, AdminOutput, ProduceError, Record, SecurityErrorKind};
use kasio_mock::ClusterConfig;
use kasio_proto::ApiKey;
use pair::Pair;
use std::time::Duration;

fn sasl_cluster() -> ClusterConfig {
    ClusterConfig {
        brokers: 3,
        seed: 5,
        sasl_users: vec![("alice".into(), "alice-secret".into())],
        ..Default::default()
    }
}

fn sasl(mechanism: &str, password: &str) -> impl Fn(&mut kasio_core::SecurityConfig) + Clone {
    let (mechanism, password) = (mechanism.to_string(), password.to_string());
    move |s: &mut kasio_core::SecurityConfig| {
        s.set("security.protocol", "SASL_PLAINTEXT").unwrap();
        s.set("sasl.mechanism", &mechanism).unwrap();
        s.set("sasl.username", "alice").unwrap();
        s.set("sasl.password", &password).unwrap();
    }
}

#[test]
fn every_mechanism_authenticates_every_client() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let secure = sasl(mechanism, "alice-secret");
        let s = secure.clone();
        let mut pair = Pair::with_cluster(sasl_cluster(), |c| s(&mut c.security));
        pair.cluster.create_topic("t", 3).unwrap();
        let s = secure.clone();
        pair.add_admin(|c| s(&mut c.security));
        let now = pair.now;
        for i in 0..300u64 {
            let v = i.to_string();
            pair.producer
                .send(Record::new("t").value(v.as_bytes()), i, now)
                .unwrap();
        }
        pair.producer.flush(now);
        pair.run_until(Duration::from_secs(30), |p| p.delivered.len() == 300);
        assert!(pair.delivered.values().all(Result::is_ok), "{mechanism}");
        let out = pair.admin_run(|a, now| a.list_topics(false, now)).unwrap();
        assert!(
            matches!(out, AdminOutput::TopicListings(ref t) if t.len() == 1),
            "{mechanism}: {out:?}"
        );
        assert!(
            pair.cluster.requests(ApiKey::SaslAuthenticate) >= 2,
            "{mechanism}"
        );
    }
}

#[test]
fn a_wrong_password_fails_fast_and_for_good() {
    let bad = sasl("SCRAM-SHA-512", "nope");
    let b = bad.clone();
    let mut pair = Pair::with_cluster(sasl_cluster(), |c| b(&mut c.security));
    pair.cluster.create_topic("t", 1).unwrap();
    pair.add_admin(|c| bad(&mut c.security));
    let now = pair.now;
    pair.producer
        .send(Record::new("t").value(b"x"), 0, now)
        .unwrap();
    pair.run_until(Duration::from_secs(5), |p| p.delivered.len() == 1);
    let Some(Err(ProduceError::Security(e))) = pair.delivered.get(&0) else {
        panic!("{:?}", pair.delivered)
    };
    assert_eq!(e.kind, SecurityErrorKind::Authentication);
    let start = pair.now;
    let out = pair.admin_run(|a, now| a.describe_cluster(now));
    let Err(AdminError::Security(e)) = out else {
        panic!("{out:?}")
    };
    assert_eq!(e.kind, SecurityErrorKind::Authentication);
    assert!(pair.now - start < Duration::from_secs(1));
    // No endless retry: a handful of attempts, not one per backoff for a minute.
    // Both clients stop: nothing is left to happen (no deadline, no dial).
    let attempts = pair.cluster.requests(ApiKey::SaslAuthenticate);
    let mut steps = 0;
    while pair.step() {
        steps += 1;
        assert!(steps < 1000, "still dialling");
    }
    assert_eq!(pair.cluster.requests(ApiKey::SaslAuthenticate), attempts);
    assert!(attempts <= 4, "{attempts} attempts");
}

#[test]
fn a_client_without_sasl_is_told_the_listener_wants_it() {
    let mut pair = Pair::with_cluster(sasl_cluster(), |_| {});
    pair.add_admin(|_| {});
    let out = pair.admin_run(|a, now| a.describe_cluster(now));
    let Err(AdminError::Security(e)) = out else {
        panic!("{out:?}")
    };
    assert_eq!(e.kind, SecurityErrorKind::Mechanism);
    assert!(e.message.contains("expect SASL"), "{e}");
}

/// With `connections.max.reauth.ms` (ten seconds here), a producer sending all along
/// renews each session on its own connection before the broker would end it: no
/// connection is dialled again, no request is refused, and every record is delivered.
#[test]
fn sessions_are_renewed_in_band_before_they_end() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let secure = sasl(mechanism, "alice-secret");
        let cluster = ClusterConfig {
            sasl_session_lifetime: Some(Duration::from_secs(10)),
            ..sasl_cluster()
        };
        let s = secure.clone();
        let mut pair = Pair::with_cluster(cluster, |c| {
            s(&mut c.security);
            c.set("linger.ms", "20").unwrap();
        });
        pair.cluster.create_topic("t", 3).unwrap();
        pair.latency = Duration::from_millis(3);
        for i in 0..600u64 {
            let v = i.to_string();
            let now = pair.now;
            pair.producer
                .send(Record::new("t").value(v.as_bytes()), i, now)
                .unwrap();
            pair.run_for(Duration::from_millis(100));
        }
        let now = pair.now;
        pair.producer.flush(now);
        pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 600);
        assert!(
            pair.delivered.values().all(Result::is_ok),
            "{mechanism}: {:?}",
            pair.delivered.values().find(|d| d.is_err())
        );
        let dials = pair.dials;
        let handshakes = pair.cluster.requests(ApiKey::SaslHandshake);
        let sessions = pair.elapsed().as_secs() / 10;
        // Every session of every connection renewed on the connection it has: the
        // bootstrap connection, one per broker led, and no dial again.
        assert!(sessions >= 6, "{mechanism}: only {:?}", pair.elapsed());
        assert!(dials <= 4, "{mechanism}: {dials} dials");
        assert!(
            handshakes >= 2 * sessions,
            "{mechanism}: {handshakes} handshakes in {sessions} session lifetimes"
        );
    }
}

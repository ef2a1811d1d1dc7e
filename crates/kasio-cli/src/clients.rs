//! Clients built from the command line's properties.

use crate::props;
use kasio::tokio::{Admin, Consumer, Producer};
use kasio::{AdminConfig, ConsumerConfig, ProducerConfig};
use std::time::Duration;

fn need_bootstrap(props: &[(String, String)]) -> Result<(), String> {
    if props::has_bootstrap(props) {
        Ok(())
    } else {
        Err("no brokers: pass --bootstrap HOST:PORT or set KASIO_BOOTSTRAP".into())
    }
}

/// An admin client: every property applies.
pub(crate) fn admin(props: &[(String, String)]) -> Result<Admin, String> {
    need_bootstrap(props)?;
    let mut config = AdminConfig::default();
    // A person at a terminal waits 15 s, not the Java client's 60, unless told otherwise.
    config.default_api_timeout = Duration::from_secs(15);
    for (k, v) in props {
        config.set(k, v).map_err(|e| e.to_string())?;
    }
    Admin::new(config).map_err(|e| e.to_string())
}

/// An admin client beside a producer or consumer: only the connection settings apply
/// (the rest are the other client's).
pub(crate) fn helper_admin(props: &[(String, String)]) -> Result<Admin, String> {
    admin(&connection_props(props))
}

/// The settings of `props` every client shares: where the cluster is and how to reach it.
pub(crate) fn connection_props(props: &[(String, String)]) -> Vec<(String, String)> {
    props
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "bootstrap.servers" | "client.id" | "request.timeout.ms"
            ) || ["security.", "ssl.", "sasl."]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .cloned()
        .collect()
}

pub(crate) fn producer(
    props: &[(String, String)],
    defaults: &[(&str, &str)],
) -> Result<Producer, String> {
    need_bootstrap(props)?;
    let mut config = ProducerConfig::default();
    for (k, v) in defaults {
        config.set(k, v).map_err(|e| e.to_string())?;
    }
    for (k, v) in props {
        config.set(k, v).map_err(|e| e.to_string())?;
    }
    Producer::new(config).map_err(|e| e.to_string())
}

pub(crate) fn consumer(
    props: &[(String, String)],
    defaults: &[(&str, &str)],
) -> Result<Consumer, String> {
    need_bootstrap(props)?;
    let mut config = ConsumerConfig::default();
    for (k, v) in defaults {
        config.set(k, v).map_err(|e| e.to_string())?;
    }
    for (k, v) in props {
        config.set(k, v).map_err(|e| e.to_string())?;
    }
    Consumer::new(config).map_err(|e| e.to_string())
}

/// How long a topic unknown to the broker asked is waited for: one just created reaches
/// every broker's metadata a moment after CreateTopics answers.
const NEW_TOPIC_WAIT: Duration = Duration::from_secs(5);

/// The partitions of a topic, or a one-line error naming it.
pub(crate) async fn partitions(admin: &Admin, topic: &str) -> Result<Vec<i32>, String> {
    let deadline = tokio::time::Instant::now() + NEW_TOPIC_WAIT;
    loop {
        let described = admin
            .describe_topics(&[topic])
            .await
            .map_err(|e| e.to_string())?;
        let result = described
            .into_iter()
            .next()
            .ok_or_else(|| format!("{topic}: no answer"))?
            .result;
        match result {
            Ok(t) => return Ok(t.partitions.iter().map(|p| p.partition).collect()),
            Err(e)
                if e.code == kasio::ErrorCode::UnknownTopicOrPartition
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("topic {topic}: {e}")),
        }
    }
}

//! Properties for handles built from one list that holds both a consumer's and a
//! producer's (the delay relay, the processing runner), and the value kinds of the
//! layers' own properties (`processing.*`, `publisher.*`).

use kasio_core::{ConfigError, ConsumerConfig, ProducerConfig};
use std::time::Duration;

/// A count of at least `least`.
pub(crate) fn count(key: &str, value: &str, least: usize) -> Result<usize, ConfigError> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n >= least)
        .ok_or_else(|| ConfigError::InvalidValue {
            key: key.into(),
            value: value.into(),
            expected: if least > 0 {
                "a count of at least 1"
            } else {
                "a count"
            },
        })
}

/// A duration in milliseconds.
pub(crate) fn millis(key: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| ConfigError::InvalidValue {
            key: key.into(),
            value: value.into(),
            expected: "milliseconds",
        })
}

/// A topic name (a pattern, `{topic}` standing for a record's), or none for `none` or
/// nothing.
pub(crate) fn topic_or_none(value: &str) -> Option<String> {
    let v = value.trim();
    (v != "none" && !v.is_empty()).then(|| v.to_string())
}

/// Sets `key` on whichever of the two configs knows it (both, for the connection's
/// settings); whether the producer took it. A key neither knows is an error, and so is a
/// bad value for a key one of them knows.
pub(crate) fn set_either(
    consumer: &mut ConsumerConfig,
    producer: &mut ProducerConfig,
    key: &str,
    value: &str,
) -> Result<bool, ConfigError> {
    let c = consumer.set(key, value).map(|_| ());
    let p = producer.set(key, value).map(|_| ());
    if let (Err(e), Err(_)) = (&c, &p) {
        if !matches!(e, ConfigError::UnknownKey(_)) {
            return Err(e.clone());
        }
        c.clone().or(p.clone())?;
    }
    Ok(p.is_ok())
}

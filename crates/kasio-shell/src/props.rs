//! Properties for handles built from one list that holds both a consumer's and a
//! producer's (the delay relay, the processing runner).

use kasio_core::{ConfigError, ConsumerConfig, ProducerConfig};

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

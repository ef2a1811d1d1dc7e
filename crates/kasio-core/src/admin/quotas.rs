//! Client quotas: describe and alter.

use super::{
    Admin, AdminError, AdminOutput, ApiError, OpId,
    call::{Read, Single, Target, unexpected},
};
use kasio_proto::{
    AnyResponse,
    messages::{
        AlterClientQuotasRequest, DescribeClientQuotasRequest, alter_client_quotas_request,
        describe_client_quotas_request::ComponentData,
    },
};
use std::time::Instant;

/// How a quota filter matches one entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// This name exactly.
    Exact(String),
    /// The default entity (`<default>`).
    Default,
    /// Any named entity.
    Any,
}

/// One component of a quota filter: an entity type (`user`, `client-id`, `ip`) and how
/// to match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFilter {
    /// The entity type.
    pub entity_type: String,
    /// The match.
    pub matching: QuotaMatch,
}

/// A quota entity and its values: the entity is a list of (type, name) pairs, a `None`
/// name being the default entity.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaEntry {
    /// The entity.
    pub entity: Vec<(String, Option<String>)>,
    /// The quota values (`producer_byte_rate`, `consumer_byte_rate`, ...).
    pub values: Vec<(String, f64)>,
}

/// Changes to one entity's quotas: a value sets a quota, `None` removes it.
///
/// ```
/// use kasio_core::QuotaChange;
/// let c = QuotaChange::new(&[("user", Some("alice"))]).set("producer_byte_rate", 1024.0);
/// assert_eq!(c.ops.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QuotaChange {
    /// The entity.
    pub entity: Vec<(String, Option<String>)>,
    /// The changes.
    pub ops: Vec<(String, Option<f64>)>,
}

impl QuotaChange {
    /// Changes for an entity of (type, name) pairs.
    pub fn new(entity: &[(&str, Option<&str>)]) -> Self {
        Self {
            entity: entity
                .iter()
                .map(|(t, n)| ((*t).to_string(), n.map(ToString::to_string)))
                .collect(),
            ops: Vec::new(),
        }
    }

    /// Sets a quota.
    #[must_use]
    pub fn set(mut self, key: &str, value: f64) -> Self {
        self.ops.push((key.into(), Some(value)));
        self
    }

    /// Removes a quota.
    #[must_use]
    pub fn remove(mut self, key: &str) -> Self {
        self.ops.push((key.into(), None));
        self
    }
}

impl Admin {
    /// The quotas of entities matching every component of `filter`; with `strict`, only
    /// entities with no other components.
    pub fn describe_client_quotas(
        &mut self,
        filter: &[QuotaFilter],
        strict: bool,
        now: Instant,
    ) -> OpId {
        let filter = filter.to_vec();
        let op = Single::new(
            Target::Any,
            move |_| {
                DescribeClientQuotasRequest {
                    components: filter
                        .iter()
                        .map(|f| {
                            let (match_type, name) = match &f.matching {
                                QuotaMatch::Exact(n) => (0, Some(n.as_str().into())),
                                QuotaMatch::Default => (1, None),
                                QuotaMatch::Any => (2, None),
                            };
                            ComponentData {
                                entity_type: f.entity_type.as_str().into(),
                                match_type,
                                r#match: name,
                                ..Default::default()
                            }
                        })
                        .collect(),
                    strict,
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::DescribeClientQuotas(r) = &resp else {
                    return unexpected(&resp);
                };
                if let Err(e) = ApiError::check(r.error_code, r.error_message.as_ref()) {
                    return Read::Fail(AdminError::Api(e));
                }
                Read::Done(AdminOutput::Quotas(
                    r.entries
                        .iter()
                        .flatten()
                        .map(|e| QuotaEntry {
                            entity: e
                                .entity
                                .iter()
                                .map(|x| {
                                    (
                                        x.entity_type.to_string(),
                                        x.entity_name.as_ref().map(ToString::to_string),
                                    )
                                })
                                .collect(),
                            values: e
                                .values
                                .iter()
                                .map(|v| (v.key.to_string(), v.value))
                                .collect(),
                        })
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }

    /// Sets or removes quotas (or only checks the changes, when `validate_only`); one
    /// result per entity.
    pub fn alter_client_quotas(
        &mut self,
        changes: &[QuotaChange],
        validate_only: bool,
        now: Instant,
    ) -> OpId {
        let changes = changes.to_vec();
        let op = Single::new(
            Target::Any,
            move |_| {
                AlterClientQuotasRequest {
                    entries: changes
                        .iter()
                        .map(|c| alter_client_quotas_request::EntryData {
                            entity: c
                                .entity
                                .iter()
                                .map(|(t, n)| alter_client_quotas_request::EntityData {
                                    entity_type: t.as_str().into(),
                                    entity_name: n.as_deref().map(Into::into),
                                    ..Default::default()
                                })
                                .collect(),
                            ops: c
                                .ops
                                .iter()
                                .map(|(k, v)| alter_client_quotas_request::OpData {
                                    key: k.as_str().into(),
                                    value: v.unwrap_or(0.0),
                                    remove: v.is_none(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    validate_only,
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::AlterClientQuotas(r) = &resp else {
                    return unexpected(&resp);
                };
                Read::Done(AdminOutput::Results(
                    r.entries
                        .iter()
                        .map(|e| ApiError::check(e.error_code, e.error_message.as_ref()))
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }
}

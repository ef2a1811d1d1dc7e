//! Configs: describe, and alter incrementally, for topics, brokers and other resources.

use super::{
    Admin, AdminOutput, ApiError, ConfigChange, ConfigEntry, ConfigResource, ConfigResourceType,
    ConfigSource, OpId, ResourceConfigs, ResourceResult,
    call::{Many, Operation, Read, Single, Target, as_api_error, retriable, unexpected},
};
use kasio_proto::{
    AnyResponse, ErrorCode,
    messages::{
        DescribeConfigsRequest, IncrementalAlterConfigsRequest,
        describe_configs_request::DescribeConfigsResource,
        incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
    },
};
use std::time::Instant;

/// Resources grouped by the broker that must answer: a broker's own configs only it
/// knows; anything else any broker serves.
fn by_target<T: Clone>(items: &[(ConfigResource, T)]) -> Vec<(Target, Vec<(ConfigResource, T)>)> {
    let mut out: Vec<(Target, Vec<(ConfigResource, T)>)> = Vec::new();
    for (r, t) in items {
        let target = r.broker_id().map_or(Target::Any, Target::Broker);
        match out.iter_mut().find(|(k, _)| *k == target) {
            Some((_, v)) => v.push((r.clone(), t.clone())),
            None => out.push((target, vec![(r.clone(), t.clone())])),
        }
    }
    out
}

fn resource(kind: i8, name: &kasio_proto::ByteStr) -> Option<ConfigResource> {
    Some(ConfigResource {
        kind: ConfigResourceType::from_wire(kind)?,
        name: name.to_string(),
    })
}

/// Puts per-resource results back in the caller's order, failing the resources a failed
/// request carried.
fn reorder<T>(
    order: &[ConfigResource],
    outs: Vec<Result<AdminOutput, super::AdminError>>,
    groups: &[Vec<ConfigResource>],
    pick: impl Fn(AdminOutput) -> Vec<(ConfigResource, Result<T, ApiError>)>,
) -> Vec<(ConfigResource, Result<T, ApiError>)> {
    let mut all: Vec<(ConfigResource, Result<T, ApiError>)> = Vec::new();
    for (out, group) in outs.into_iter().zip(groups) {
        match out {
            Ok(o) => all.extend(pick(o)),
            Err(e) => {
                let e = as_api_error(e);
                all.extend(group.iter().map(|r| (r.clone(), Err(e.clone()))));
            }
        }
    }
    let mut sorted = Vec::new();
    for r in order {
        if let Some(i) = all.iter().position(|(x, _)| x == r) {
            sorted.push(all.swap_remove(i));
        }
    }
    sorted
}

impl Admin {
    /// Describes the configs of topics, brokers and other resources.
    pub fn describe_configs(&mut self, resources: &[ConfigResource], now: Instant) -> OpId {
        let items: Vec<(ConfigResource, ())> = resources.iter().map(|r| (r.clone(), ())).collect();
        let grouped = by_target(&items);
        let groups: Vec<Vec<ConfigResource>> = grouped
            .iter()
            .map(|(_, v)| v.iter().map(|(r, ())| r.clone()).collect())
            .collect();
        let subs = grouped
            .into_iter()
            .map(|(target, rs)| {
                let rs: Vec<ConfigResource> = rs.into_iter().map(|(r, ())| r).collect();
                Single::new(
                    target,
                    move |_| {
                        DescribeConfigsRequest {
                            resources: rs
                                .iter()
                                .map(|r| DescribeConfigsResource {
                                    resource_type: r.kind.wire(),
                                    resource_name: r.name.as_str().into(),
                                    configuration_keys: None,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }
                        .into()
                    },
                    |resp| {
                        let AnyResponse::DescribeConfigs(r) = &resp else {
                            return unexpected(&resp);
                        };
                        let mut out = Vec::new();
                        for res in &r.results {
                            if retriable(ErrorCode::from_code(res.error_code)) {
                                return Read::Retry;
                            }
                            let Some(resource) = resource(res.resource_type, &res.resource_name)
                            else {
                                continue;
                            };
                            let result =
                                ApiError::check(res.error_code, res.error_message.as_ref()).map(
                                    |()| {
                                        res.configs
                                            .iter()
                                            .map(|c| ConfigEntry {
                                                name: c.name.to_string(),
                                                value: c.value.as_ref().map(ToString::to_string),
                                                source: ConfigSource::from_wire(c.config_source),
                                                read_only: c.read_only,
                                                sensitive: c.is_sensitive,
                                            })
                                            .collect()
                                    },
                                );
                            out.push(ResourceConfigs { resource, result });
                        }
                        Read::Done(AdminOutput::Configs(out))
                    },
                ) as Box<dyn Operation>
            })
            .collect();
        let order = resources.to_vec();
        let op = Many::new(subs, move |outs| {
            let rows = reorder(&order, outs, &groups, |o| match o {
                AdminOutput::Configs(v) => v.into_iter().map(|c| (c.resource, c.result)).collect(),
                _ => Vec::new(),
            });
            AdminOutput::Configs(
                rows.into_iter()
                    .map(|(resource, result)| ResourceConfigs { resource, result })
                    .collect(),
            )
        });
        self.start(op, now)
    }

    /// Changes configs key by key (IncrementalAlterConfigs), or only checks the changes
    /// when `validate_only`.
    pub fn alter_configs(
        &mut self,
        changes: &[(ConfigResource, Vec<ConfigChange>)],
        validate_only: bool,
        now: Instant,
    ) -> OpId {
        let grouped = by_target(changes);
        let groups: Vec<Vec<ConfigResource>> = grouped
            .iter()
            .map(|(_, v)| v.iter().map(|(r, _)| r.clone()).collect())
            .collect();
        let subs = grouped
            .into_iter()
            .map(|(target, rs)| {
                Single::new(
                    target,
                    move |_| {
                        IncrementalAlterConfigsRequest {
                            resources: rs
                                .iter()
                                .map(|(r, cs)| AlterConfigsResource {
                                    resource_type: r.kind.wire(),
                                    resource_name: r.name.as_str().into(),
                                    configs: cs.iter().map(alterable).collect(),
                                    ..Default::default()
                                })
                                .collect(),
                            validate_only,
                            ..Default::default()
                        }
                        .into()
                    },
                    |resp| {
                        let AnyResponse::IncrementalAlterConfigs(r) = &resp else {
                            return unexpected(&resp);
                        };
                        let mut out = Vec::new();
                        for res in &r.responses {
                            if retriable(ErrorCode::from_code(res.error_code)) {
                                return Read::Retry;
                            }
                            let Some(resource) = resource(res.resource_type, &res.resource_name)
                            else {
                                continue;
                            };
                            let error = ApiError::new(res.error_code, res.error_message.as_ref());
                            out.push(ResourceResult { resource, error });
                        }
                        Read::Done(AdminOutput::ConfigResults(out))
                    },
                ) as Box<dyn Operation>
            })
            .collect();
        let order: Vec<ConfigResource> = changes.iter().map(|(r, _)| r.clone()).collect();
        let op = Many::new(subs, move |outs| {
            let rows = reorder(&order, outs, &groups, |o| match o {
                AdminOutput::ConfigResults(v) => v
                    .into_iter()
                    .map(|c| (c.resource, c.error.map_or(Ok(()), Err)))
                    .collect(),
                _ => Vec::new(),
            });
            AdminOutput::ConfigResults(
                rows.into_iter()
                    .map(|(resource, result)| ResourceResult {
                        resource,
                        error: result.err(),
                    })
                    .collect(),
            )
        });
        self.start(op, now)
    }
}

fn alterable(c: &ConfigChange) -> AlterableConfig {
    let (name, op, value) = match c {
        ConfigChange::Set(k, v) => (k, 0, Some(v)),
        ConfigChange::Delete(k) => (k, 1, None),
        ConfigChange::Append(k, v) => (k, 2, Some(v)),
        ConfigChange::Subtract(k, v) => (k, 3, Some(v)),
    };
    AlterableConfig {
        name: name.as_str().into(),
        config_operation: op,
        value: value.map(|v| v.as_str().into()),
        ..Default::default()
    }
}

//! Access control lists: describe, create, delete.

use super::{
    Admin, AdminError, AdminOutput, ApiError, OpId,
    call::{Read, Single, Target, unexpected},
};
use kasio_proto::{
    AnyResponse,
    messages::{
        CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
        create_acls_request::AclCreation, delete_acls_request::DeleteAclsFilter,
    },
};
use std::time::Instant;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this client does not know.
            Unknown,
        }

        impl $name {
            pub(crate) fn wire(self) -> i8 {
                match self {
                    $(Self::$variant => $code,)+
                    Self::Unknown => 0,
                }
            }

            pub(crate) fn from_wire(v: i8) -> Self {
                match v {
                    $($code => Self::$variant,)+
                    _ => Self::Unknown,
                }
            }
        }
    };
}

wire_enum!(
    /// What an ACL protects.
    ResourceType {
        /// Any type (filters only).
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A group.
        Group = 3,
        /// The cluster.
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user.
        User = 7,
    }
);

wire_enum!(
    /// How an ACL's resource name matches.
    PatternType {
        /// Any pattern (filters only).
        Any = 1,
        /// Whatever would match a resource of that name (filters only).
        Match = 2,
        /// The name exactly (`*` for every resource).
        Literal = 3,
        /// Every resource whose name starts with it.
        Prefixed = 4,
    }
);

wire_enum!(
    /// What an ACL allows or denies.
    AclOperation {
        /// Any operation (filters only).
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Cluster actions (replication).
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent writes.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
);

wire_enum!(
    /// Whether an ACL allows or denies.
    AclPermission {
        /// Either (filters only).
        Any = 1,
        /// Deny.
        Deny = 2,
        /// Allow.
        Allow = 3,
    }
);

/// One ACL: who may (or may not) do what, from where, to which resources.
///
/// ```
/// use kasio_core::{AclBinding, AclOperation, AclPermission, ResourceType};
/// let deny = AclBinding::topic("payments", "User:alice", AclOperation::Read, AclPermission::Deny);
/// assert_eq!(deny.resource_type, ResourceType::Topic);
/// assert_eq!(deny.host, "*");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBinding {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name (or prefix).
    pub name: String,
    /// How the name matches.
    pub pattern: PatternType,
    /// The principal, as `User:name`.
    pub principal: String,
    /// The host, or `*`.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

/// A resource as the wire has it: type, name, pattern type.
type WireResource<'a> = (i8, &'a kasio_proto::ByteStr, i8);
/// An entry as the wire has it: principal, host, operation, permission.
type WireEntry<'a> = (&'a kasio_proto::ByteStr, &'a kasio_proto::ByteStr, i8, i8);

impl AclBinding {
    /// A binding from DescribeAcls or DeleteAcls fields.
    fn from_wire(resource: WireResource<'_>, entry: WireEntry<'_>) -> Self {
        Self {
            resource_type: ResourceType::from_wire(resource.0),
            name: resource.1.to_string(),
            pattern: PatternType::from_wire(resource.2),
            principal: entry.0.to_string(),
            host: entry.1.to_string(),
            operation: AclOperation::from_wire(entry.2),
            permission: AclPermission::from_wire(entry.3),
        }
    }

    /// An ACL on one topic (a literal name), from any host.
    pub fn topic(
        name: &str,
        principal: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> Self {
        Self {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    /// The filter matching exactly this ACL.
    pub fn filter(&self) -> AclFilter {
        AclFilter {
            resource_type: self.resource_type,
            name: Some(self.name.clone()),
            pattern: self.pattern,
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: self.operation,
            permission: self.permission,
        }
    }
}

/// Which ACLs to describe or delete; `None` and the `Any` variants match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name.
    pub name: Option<String>,
    /// The pattern type.
    pub pattern: PatternType,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The operation.
    pub operation: AclOperation,
    /// The permission.
    pub permission: AclPermission,
}

impl AclFilter {
    /// Matches every ACL.
    pub fn any() -> Self {
        Self {
            resource_type: ResourceType::Any,
            name: None,
            pattern: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }
}

fn check(code: i16, message: Option<&kasio_proto::ByteStr>) -> Result<(), Read> {
    ApiError::check(code, message).map_err(|e| Read::Fail(AdminError::Api(e)))
}

impl Admin {
    /// The ACLs matching `filter`.
    pub fn describe_acls(&mut self, filter: &AclFilter, now: Instant) -> OpId {
        let f = filter.clone();
        let op = Single::new(
            Target::Any,
            move |_| {
                DescribeAclsRequest {
                    resource_type_filter: f.resource_type.wire(),
                    resource_name_filter: f.name.as_deref().map(Into::into),
                    pattern_type_filter: f.pattern.wire(),
                    principal_filter: f.principal.as_deref().map(Into::into),
                    host_filter: f.host.as_deref().map(Into::into),
                    operation: f.operation.wire(),
                    permission_type: f.permission.wire(),
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::DescribeAcls(r) = &resp else {
                    return unexpected(&resp);
                };
                if let Err(read) = check(r.error_code, r.error_message.as_ref()) {
                    return read;
                }
                let mut out = Vec::new();
                for res in &r.resources {
                    for a in &res.acls {
                        out.push(AclBinding::from_wire(
                            (res.resource_type, &res.resource_name, res.pattern_type),
                            (&a.principal, &a.host, a.operation, a.permission_type),
                        ));
                    }
                }
                Read::Done(AdminOutput::Acls(out))
            },
        );
        self.start(op, now)
    }

    /// Creates ACLs; one result per binding.
    pub fn create_acls(&mut self, acls: &[AclBinding], now: Instant) -> OpId {
        let acls = acls.to_vec();
        let op = Single::new(
            Target::Any,
            move |_| {
                CreateAclsRequest {
                    creations: acls
                        .iter()
                        .map(|a| AclCreation {
                            resource_type: a.resource_type.wire(),
                            resource_name: a.name.as_str().into(),
                            resource_pattern_type: a.pattern.wire(),
                            principal: a.principal.as_str().into(),
                            host: a.host.as_str().into(),
                            operation: a.operation.wire(),
                            permission_type: a.permission.wire(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::CreateAcls(r) = &resp else {
                    return unexpected(&resp);
                };
                Read::Done(AdminOutput::Results(
                    r.results
                        .iter()
                        .map(|x| ApiError::check(x.error_code, x.error_message.as_ref()))
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }

    /// Deletes the ACLs matching each filter; each result lists what its filter deleted.
    pub fn delete_acls(&mut self, filters: &[AclFilter], now: Instant) -> OpId {
        let filters = filters.to_vec();
        let op = Single::new(
            Target::Any,
            move |_| {
                DeleteAclsRequest {
                    filters: filters
                        .iter()
                        .map(|f| DeleteAclsFilter {
                            resource_type_filter: f.resource_type.wire(),
                            resource_name_filter: f.name.as_deref().map(Into::into),
                            pattern_type_filter: f.pattern.wire(),
                            principal_filter: f.principal.as_deref().map(Into::into),
                            host_filter: f.host.as_deref().map(Into::into),
                            operation: f.operation.wire(),
                            permission_type: f.permission.wire(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::DeleteAcls(r) = &resp else {
                    return unexpected(&resp);
                };
                Read::Done(AdminOutput::DeletedAcls(
                    r.filter_results
                        .iter()
                        .map(|f| {
                            ApiError::check(f.error_code, f.error_message.as_ref()).map(|()| {
                                f.matching_acls
                                    .iter()
                                    .map(|a| {
                                        AclBinding::from_wire(
                                            (a.resource_type, &a.resource_name, a.pattern_type),
                                            (&a.principal, &a.host, a.operation, a.permission_type),
                                        )
                                    })
                                    .collect()
                            })
                        })
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }
}

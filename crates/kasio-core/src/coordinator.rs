//! FindCoordinator in both of its shapes (one key before v4, a list of keys since), for
//! the group, transaction and admin clients that look coordinators up.

use kasio_proto::{
    ByteStr, ErrorCode,
    messages::{FindCoordinatorRequest, FindCoordinatorResponse},
};

/// Key types of FindCoordinator.
pub(crate) const GROUP: i8 = 0;
pub(crate) const TRANSACTION: i8 = 1;

/// A request for `key`'s coordinator as `version` shapes it.
pub(crate) fn request(key: &str, key_type: i8, version: i16) -> FindCoordinatorRequest {
    if version >= 4 {
        FindCoordinatorRequest {
            key_type,
            coordinator_keys: vec![key.into()],
            ..Default::default()
        }
    } else {
        FindCoordinatorRequest {
            key: key.into(),
            key_type,
            ..Default::default()
        }
    }
}

/// The first (only) answer of a response: error, node id, host and port.
pub(crate) fn answer(r: &FindCoordinatorResponse, version: i16) -> (ErrorCode, i32, ByteStr, i32) {
    let (code, node, host, port) = if version >= 4 {
        match r.coordinators.first() {
            Some(c) => (c.error_code, c.node_id, c.host.clone(), c.port),
            None => (ErrorCode::CoordinatorNotAvailable.code(), -1, "".into(), -1),
        }
    } else {
        (r.error_code, r.node_id, r.host.clone(), r.port)
    };
    (ErrorCode::from_code(code), node, host, port)
}

//! InitProducerId for idempotent producers: a new id, or the next epoch of a known one.

use crate::cluster::Cluster;
use kasio_proto::{
    ErrorCode,
    messages::{InitProducerIdRequest, InitProducerIdResponse},
};

pub(crate) fn handle(cluster: &mut Cluster, req: &InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse {
        ongoing_txn_producer_id: -1,
        ongoing_txn_producer_epoch: -1,
        ..Default::default()
    };
    match cluster.producer_epochs.get_mut(&req.producer_id) {
        // KIP-360: a known producer asks for its next epoch (with its current one).
        Some(epoch) if req.producer_id >= 0 && req.producer_epoch == *epoch => {
            *epoch += 1;
            resp.producer_id = req.producer_id;
            resp.producer_epoch = *epoch;
        }
        Some(_) if req.producer_id >= 0 => {
            resp.error_code = ErrorCode::InvalidProducerEpoch.code();
            resp.producer_id = -1;
            resp.producer_epoch = -1;
        }
        _ => {
            let id = cluster.next_producer_id;
            cluster.next_producer_id += 1;
            cluster.producer_epochs.insert(id, 0);
            resp.producer_id = id;
            resp.producer_epoch = 0;
        }
    }
    resp
}

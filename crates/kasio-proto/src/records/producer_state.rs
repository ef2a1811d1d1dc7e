//! Rewriting a finished batch's producer fields, as an idempotent producer must when it
//! assigns sequences at send time or after an epoch bump.

use super::batch::{BATCH_HEADER_LEN, CRC_START, MAGIC_OFFSET};
use crate::error::EncodeError;

const CRC_OFFSET: usize = MAGIC_OFFSET + 1;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;

/// Sets the producer id, epoch and base sequence of an encoded v2 batch and recomputes
/// its CRC, leaving the records untouched.
///
/// ```
/// use kasio_proto::records::{set_producer_state, BatchBuilder, BatchOptions, RecordBatch, NO_HEADERS};
/// let mut b = BatchBuilder::new(BatchOptions::default());
/// b.append(0, None, Some(b"v"), NO_HEADERS)?;
/// let mut bytes = b.finish()?.try_into_mut().unwrap();
/// set_producer_state(&mut bytes, 42, 3, 17)?;
/// let batch = RecordBatch::decode(&mut bytes.freeze())?;
/// assert_eq!((batch.producer_id, batch.producer_epoch, batch.base_sequence), (42, 3, 17));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`EncodeError::InvalidValue`] if `batch` is not a whole v2 batch.
pub fn set_producer_state(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<(), EncodeError> {
    if batch.len() < BATCH_HEADER_LEN || batch[MAGIC_OFFSET] != 2 {
        return Err(EncodeError::InvalidValue("not a v2 record batch"));
    }
    batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
        .copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
        .copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

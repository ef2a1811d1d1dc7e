//! Any bytes as a fetched record set: batches, records and headers are iterated to the end
//! without panicking, hanging or decompressing past the limit.
#![no_main]

use bytes::Bytes;
use kasio_proto::records::{Batch, Batches, ControlRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for batch in Batches::new(Bytes::copy_from_slice(data)) {
        match batch {
            Ok(Batch::V2(b)) => {
                let Ok(records) = b.records_with_limit(1 << 20) else { continue };
                for r in records.flatten() {
                    if b.attributes.is_control() {
                        let _ = ControlRecord::parse(&r);
                    }
                    for h in r.headers() {
                        let _ = h.map(|h| h.key.len());
                    }
                }
            }
            Ok(Batch::Legacy(l)) => {
                let _ = l.records();
            }
            Ok(_) | Err(_) => {}
        }
    }
});

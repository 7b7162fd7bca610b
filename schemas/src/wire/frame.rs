//! The Confluent framing: a magic byte and a big-endian schema id before the Avro body.

use crate::error::EventError;

pub const MAGIC_BYTE: u8 = 0;
pub const HEADER_LEN: usize = 5;

/// Splits a framed message into its schema id and Avro body.
pub fn unframe(bytes: &[u8]) -> std::result::Result<(u32, &[u8]), EventError> {
    if bytes.len() < HEADER_LEN {
        return Err(EventError::malformed(format!(
            "message of {} bytes is shorter than the 5-byte confluent header",
            bytes.len()
        )));
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(EventError::malformed(format!("magic byte is {:#04x}, expected 0x00", bytes[0])));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

/// Appends the 5-byte Confluent header for `schema_id` to `out`.
pub fn write_header(out: &mut Vec<u8>, schema_id: u32) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

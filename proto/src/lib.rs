//! Sigil gRPC API (`sigil.v1`), generated at build time from `proto/sigil/v1/*.proto`.
//!
//! * [`v1::job_service_server`] / [`v1::job_service_client`]: submit, observe, cancel and
//!   collect jobs, fetch receipts.
//! * [`v1::attestation_service_server`] / [`v1::attestation_service_client`]: evidence bound to
//!   a buyer's nonce.
//! * [`v1::provider_service_server`] / [`v1::provider_service_client`]: what the provider offers.
//!
//! The services and [`codec`] need the default `grpc` feature; without it the crate is the
//! messages alone (prost).
//!
//! Receipts travel as canonical SCALE bytes (`ReceiptResponse::signed_receipt`) beside a
//! decoded view; verifiers check the bytes, never the view.

/// Generated messages and services of package `sigil.v1`.
// Generated code: the .proto files carry the documentation, and prost/tonic output does not
// follow the workspace's lints.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/sigil.v1.rs"));

    /// Encoded `FileDescriptorSet` of `sigil.v1`, for tonic-reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/sigil_v1_descriptor.bin"));
}

/// Domain prefix of the message a buyer signs to submit a job:
/// `SHA-256(SUBMIT_DOMAIN || spec bytes)`.
pub const SUBMIT_DOMAIN: &[u8] = b"sigil.submit.v1\0";
/// Domain prefix of a signed cancel request: `CANCEL_DOMAIN || job_id || issued_at_ms (LE u64)`.
pub const CANCEL_DOMAIN: &[u8] = b"sigil.cancel.v1\0";
/// Domain prefix of a signed output request; the message is [`output_message`]. (Version 1
/// signed only `job_id || issued_at_ms`, so a signature for one file was good for any other;
/// agents accept only version 2.)
pub const OUTPUT_DOMAIN: &[u8] = b"sigil.output.v2\0";
/// Domain prefix of a signed status request (`GetJob`, `Watch`):
/// `STATUS_DOMAIN || job_id || issued_at_ms (LE u64)`.
pub const STATUS_DOMAIN: &[u8] = b"sigil.status.v1\0";
/// Domain prefix of a signed receipt request (`GetReceipt`):
/// `RECEIPT_DOMAIN || job_id || issued_at_ms (LE u64)`.
pub const RECEIPT_DOMAIN: &[u8] = b"sigil.receipt.v1\0";

/// The message a buyer signs for a request on an existing job:
/// `domain || job_id || issued_at_ms (LE u64)`.
pub fn request_message(domain: &[u8], job_id: &[u8; 32], issued_at_ms: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len().saturating_add(40));
    m.extend_from_slice(domain);
    m.extend_from_slice(job_id);
    m.extend_from_slice(&issued_at_ms.to_le_bytes());
    m
}

/// The message a buyer signs for one output stream: [`request_message`] under
/// [`OUTPUT_DOMAIN`], then `kind (LE u32) || offset (LE u64) || len(path) (LE u32) || path`.
/// The signature covers exactly one file (or log) from one offset.
pub fn output_message(
    job_id: &[u8; 32],
    issued_at_ms: u64,
    kind: i32,
    offset: u64,
    path: &str,
) -> Vec<u8> {
    let mut m = request_message(OUTPUT_DOMAIN, job_id, issued_at_ms);
    m.extend_from_slice(&kind.to_le_bytes());
    m.extend_from_slice(&offset.to_le_bytes());
    let len = u32::try_from(path.len()).unwrap_or(u32::MAX);
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(path.as_bytes());
    m
}

/// The codec of every `sigil.v1` service: prost encoding, with a request that does not decode
/// reported as `INVALID_ARGUMENT` (prost's own codec says `INTERNAL`, which blames the server
/// for the client's bytes).
#[cfg(feature = "grpc")]
pub mod codec {
    use std::marker::PhantomData;

    use tonic::Status;
    use tonic::codec::{Codec, DecodeBuf, Decoder};
    use tonic_prost::ProstEncoder;

    /// [`tonic_prost::ProstCodec`] with [`StrictDecoder`].
    #[derive(Debug, Clone)]
    pub struct SigilCodec<T, U>(PhantomData<(T, U)>);

    impl<T, U> Default for SigilCodec<T, U> {
        fn default() -> Self {
            Self(PhantomData)
        }
    }

    impl<T, U> Codec for SigilCodec<T, U>
    where
        T: prost::Message + Send + 'static,
        U: prost::Message + Default + Send + 'static,
    {
        type Encode = T;
        type Decode = U;
        type Encoder = ProstEncoder<T>;
        type Decoder = StrictDecoder<U>;

        fn encoder(&mut self) -> Self::Encoder {
            ProstEncoder::default()
        }

        fn decoder(&mut self) -> Self::Decoder {
            StrictDecoder(PhantomData)
        }
    }

    /// Decodes a message; a malformed one is `INVALID_ARGUMENT`.
    #[derive(Debug, Clone)]
    pub struct StrictDecoder<U>(PhantomData<U>);

    impl<U: prost::Message + Default> Decoder for StrictDecoder<U> {
        type Item = U;
        type Error = Status;

        fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
            U::decode(buf)
                .map(Some)
                .map_err(|e| Status::invalid_argument(format!("the message does not decode: {e}")))
        }
    }
}

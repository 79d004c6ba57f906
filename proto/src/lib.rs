//! Sigil gRPC API (`sigil.v1`), generated at build time from `proto/sigil/v1/*.proto`.
//!
//! * [`v1::job_service_server`] / [`v1::job_service_client`]: submit, observe, cancel and
//!   collect jobs, fetch receipts.
//! * [`v1::attestation_service_server`] / [`v1::attestation_service_client`]: evidence bound to
//!   a buyer's nonce.
//! * [`v1::provider_service_server`] / [`v1::provider_service_client`]: what the provider offers.
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
    tonic::include_proto!("sigil.v1");

    /// Encoded `FileDescriptorSet` of `sigil.v1`, for tonic-reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/sigil_v1_descriptor.bin"));
}

/// Domain prefix of the message a buyer signs to submit a job:
/// `SHA-256(SUBMIT_DOMAIN || spec bytes)`.
pub const SUBMIT_DOMAIN: &[u8] = b"sigil.submit.v1\0";
/// Domain prefix of a signed cancel request: `CANCEL_DOMAIN || job_id || issued_at_ms (LE u64)`.
pub const CANCEL_DOMAIN: &[u8] = b"sigil.cancel.v1\0";
/// Domain prefix of a signed output request: `OUTPUT_DOMAIN || job_id || issued_at_ms (LE u64)`.
pub const OUTPUT_DOMAIN: &[u8] = b"sigil.output.v1\0";

//! What the synthetic PKIs share.

use rcgen::{
    CertificateRevocationListParams, CertifiedIssuer, KeyIdMethod, KeyPair, RevokedCertParams,
    SerialNumber, date_time_ymd,
};

/// A CRL of `issuer` issued 2029-06-01, next update `until` (year, month, day), revoking the
/// serials `revoked` (on 2029-05-01).
pub fn crl(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    revoked: &[u64],
    until: (i32, u8, u8),
) -> Vec<u8> {
    CertificateRevocationListParams {
        this_update: date_time_ymd(2029, 6, 1),
        next_update: date_time_ymd(until.0, until.1, until.2),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: date_time_ymd(2029, 5, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .unwrap()
    .der()
    .to_vec()
}

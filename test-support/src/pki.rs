//! What the synthetic PKIs share.

use rcgen::{
    CertificateRevocationListParams, CertifiedIssuer, KeyIdMethod, KeyPair, RevokedCertParams,
    SerialNumber, date_time_ymd,
};

/// A CRL of `issuer` issued 2029-06-01, next update `until` (year, month, day), revoking the
/// serials `revoked` (on 2020-01-01).
pub fn crl(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    revoked: &[u64],
    until: (i32, u8, u8),
) -> Vec<u8> {
    let serials: Vec<SerialNumber> = revoked.iter().map(|s| SerialNumber::from(*s)).collect();
    crl_with(issuer, &serials, (2029, 6, 1), until)
}

/// A CRL of `issuer` issued `this_update`, next update `next_update` (year, month, day),
/// revoking `revoked` (serial numbers as certificates carry them, e.g. a certificate's
/// DER serial bytes through `SerialNumber::from_slice`) on 2020-01-01.
pub fn crl_with(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    revoked: &[SerialNumber],
    this_update: (i32, u8, u8),
    next_update: (i32, u8, u8),
) -> Vec<u8> {
    CertificateRevocationListParams {
        this_update: date_time_ymd(this_update.0, this_update.1, this_update.2),
        next_update: date_time_ymd(next_update.0, next_update.1, next_update.2),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: s.clone(),
                revocation_time: date_time_ymd(2020, 1, 1),
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

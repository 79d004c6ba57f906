//! Adversarial evidence pieces for the `verify_evidence` benchmark, made from genuine ones so
//! that the verifier does as much work as it can before it refuses them: device chains that
//! fail at their last signature, RIMs with a changed signature byte or padded with
//! measurements, OCSP responses about no certificate of the bundle, and a CRL of the largest
//! size a bundle may carry whose signature fails.

// Offsets, sizes and counters over the benchmark's own inputs (at most a few MiB), far from
// overflowing.
#![allow(clippy::arithmetic_side_effects)]

use anyhow::{Context, Result, anyhow};
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::verify::ocsp::{
    BasicResponse, CertStatusDer, ID_PKIX_OCSP_BASIC, OcspResponseDer, ResponderId, ResponseBytes,
    ResponseData, ResponseStatus, SingleResponse, cert_id_sha384,
};
use attestation_verifier::verify::x509::Cert;
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

/// `text` with its `k`-th base64 character at or after `from` (or before `to`, counting
/// backwards) changed to another one.
fn change_b64(text: &mut [u8], positions: impl Iterator<Item = usize>, k: usize) {
    let mut seen = 0;
    for i in positions {
        if text.get(i).copied().is_some_and(is_b64) {
            if seen == k {
                if let Some(c) = text.get_mut(i) {
                    *c = if *c == b'A' { b'B' } else { b'A' };
                }
                return;
            }
            seen += 1;
        }
    }
}

/// The PEM chain (leaf first, root last) with one base64 character changed near the end of
/// the certificate just below the root, `k` characters from the last safe one: its signature
/// by the root fails after every other link verified.
pub(crate) fn broken_chain(pem: &str, k: usize) -> String {
    const END: &str = "-----END CERTIFICATE-----";
    let ends: Vec<usize> = pem.match_indices(END).map(|(i, _)| i).collect();
    let Some(&end) = ends.len().checked_sub(2).and_then(|i| ends.get(i)) else {
        return pem.to_string();
    };
    let mut bytes = pem.as_bytes().to_vec();
    // Skip the last 4 base64 characters (padding bits), then count back.
    change_b64(&mut bytes, (0..end).rev(), 4 + k);
    String::from_utf8(bytes).unwrap_or_else(|_| pem.to_string())
}

/// The RIM with one base64 character of its `SignatureValue` changed (the `k`-th after the
/// eighth).
pub(crate) fn flipped_rim(rim: &[u8], k: usize) -> Vec<u8> {
    let mut out = rim.to_vec();
    let tag = b"SignatureValue>";
    if let Some(at) = rim.windows(tag.len()).position(|w| w == tag) {
        change_b64(&mut out, at + tag.len()..rim.len(), 8 + k);
    }
    out
}

/// The RIM with `bytes` bytes of further measurement elements in its payload (its digest then
/// fails, after the whole document was read and canonicalised).
pub(crate) fn padded_rim(rim: &[u8], bytes: usize) -> Vec<u8> {
    if bytes == 0 {
        return rim.to_vec();
    }
    let close = b"</ns0:Payload>";
    let Some(at) = rim.windows(close.len()).position(|w| w == close) else {
        return rim.to_vec();
    };
    let mut pad = Vec::with_capacity(bytes);
    let mut index = 64usize;
    loop {
        let element = format!(
            "<ns0:Resource type=\"Measurement\" index=\"{index}\" active=\"False\" alternatives=\"1\" ns2:Hash0=\"{}\" name=\"Measurement_{index}\" size=\"48\"/>\n",
            "ab".repeat(48)
        );
        if pad.len() + element.len() > bytes {
            break;
        }
        pad.extend_from_slice(element.as_bytes());
        index += 1;
    }
    pad.resize(bytes, b' ');
    let mut out = rim.get(..at).unwrap_or_default().to_vec();
    out.extend_from_slice(&pad);
    out.extend_from_slice(rim.get(at..).unwrap_or_default());
    out
}

/// `n` OCSP responses, each about a certificate with the issuer of the chain's first
/// intermediate and a serial number no certificate has, with a signature that would not
/// verify: each is parsed, and read against every certificate the verifier checks.
pub(crate) fn ocsp_responses(chain: &[Vec<u8>], n: usize) -> Result<Vec<Vec<u8>>> {
    let cert = Cert::from_der("intermediate", chain.get(1).context("chain too short")?)?;
    let issuer = Cert::from_der("issuer", chain.get(2).context("chain too short")?)?;
    let at = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(1_700_000_000))?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut id = cert_id_sha384(&RustCrypto, &cert, &issuer)?;
        let [hi, lo] = u16::try_from(i)?.to_be_bytes();
        id.serial_number = Decode::from_der(&[0x02, 0x04, 0x7F, 0x5E, hi, lo])?;
        let data = ResponseData {
            version: 0,
            responder_id: ResponderId::ByKey(OctetString::new(vec![0u8; 20])?),
            produced_at: at,
            responses: vec![SingleResponse {
                cert_id: id,
                cert_status: CertStatusDer::Good(Null),
                this_update: at,
                next_update: None,
                single_extensions: None,
            }],
            response_extensions: None,
        };
        let mut signature = vec![0x30, 0x66, 0x02, 0x31, 0x00];
        signature.extend_from_slice(&[0x5A; 48]);
        signature.extend_from_slice(&[0x02, 0x31, 0x00]);
        signature.extend_from_slice(&[0x5A; 48]);
        let basic = BasicResponse {
            tbs_response_data: data,
            signature_algorithm: spki::AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
                parameters: None,
            },
            signature: BitString::from_bytes(&signature)?,
            certs: None,
        };
        out.push(
            OcspResponseDer {
                response_status: ResponseStatus::Successful,
                response_bytes: Some(ResponseBytes {
                    response_type: ID_PKIX_OCSP_BASIC,
                    response: OctetString::new(basic.to_der()?)?,
                }),
            }
            .to_der()?,
        );
    }
    Ok(out)
}

/// A DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// The elements of a DER SEQUENCE's content, each as its full TLV.
fn children(content: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let first = *rest.get(1).ok_or_else(|| anyhow!("truncated DER"))?;
        let (header, len) = if first < 0x80 {
            (2, usize::from(first))
        } else {
            let n = usize::from(first & 0x7F);
            let len = rest
                .get(2..2 + n)
                .ok_or_else(|| anyhow!("truncated DER"))?
                .iter()
                .fold(0usize, |a, b| (a << 8) | usize::from(*b));
            (2 + n, len)
        };
        let (item, tail) = rest
            .split_at_checked(header + len)
            .ok_or_else(|| anyhow!("truncated DER"))?;
        out.push(item);
        rest = tail;
    }
    Ok(out)
}

/// The content of a TLV.
fn content(item: &[u8]) -> Result<&[u8]> {
    let all = children(item)?;
    let one = all.first().ok_or_else(|| anyhow!("empty DER"))?;
    let first = *one.get(1).ok_or_else(|| anyhow!("truncated DER"))?;
    let header = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7F)
    };
    one.get(header..).ok_or_else(|| anyhow!("truncated DER"))
}

/// A CRL of at most `len` bytes issued in the name of `ark` (its subject and signature
/// algorithm), listing as many revoked serial numbers as fit, with a signature that fails.
pub(crate) fn crl(ark: &[u8], len: usize) -> Result<Vec<u8>> {
    let cert = children(content(ark)?)?;
    let tbs = children(content(cert.first().context("no TBS")?)?)?;
    let algorithm = *cert.get(1).context("no signature algorithm")?;
    let versioned = tbs.first().is_some_and(|t| t.first() == Some(&0xA0));
    let subject = *tbs
        .get(if versioned { 5 } else { 4 })
        .context("no subject")?;
    let time = |t: &str| tlv(0x17, t.as_bytes());
    let entry = |i: u32| {
        let mut serial = vec![0x01];
        serial.extend_from_slice(&i.to_be_bytes());
        serial.extend_from_slice(&[0x5E; 4]);
        let mut e = tlv(0x02, &serial);
        e.extend(time("240101000000Z"));
        tlv(0x30, &e)
    };
    let build = |n: u32| {
        let mut revoked = Vec::new();
        for i in 0..n {
            revoked.extend(entry(i));
        }
        let mut tbs = tlv(0x02, &[0x01]);
        tbs.extend_from_slice(algorithm);
        tbs.extend_from_slice(subject);
        tbs.extend(time("240101000000Z"));
        tbs.extend(time("350101000000Z"));
        tbs.extend(tlv(0x30, &revoked));
        let mut crl = tlv(0x30, &tbs);
        crl.extend_from_slice(algorithm);
        let mut signature = vec![0x00];
        signature.extend_from_slice(&[0x5A; 512]);
        crl.extend(tlv(0x03, &signature));
        tlv(0x30, &crl)
    };
    let per_entry = entry(0).len();
    let mut n = u32::try_from(len.saturating_sub(2_048) / per_entry)?;
    let mut out = build(n);
    while out.len() > len && n > 0 {
        n -= 1;
        out = build(n);
    }
    Ok(out)
}

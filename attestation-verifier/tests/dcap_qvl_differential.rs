//! Differential test against `dcap-qvl` 0.7.1 on mutated quotes.
//!
//! Every TDX case of the vectors with collateral (and the SGX quote that sits among them)
//! is verified by this crate and by `dcap-qvl` (ring backend) at the case's evaluation
//! time, then again after each of a fixed, deterministic set of mutations: bit flips spread
//! over every region of the quote (header, TD report, signature, attestation key, QE report
//! and its signature, QE auth data, the length and type fields, the PCK chain's PEM text
//! and each certificate's base64), truncations at and around every region boundary,
//! appended bytes, and edits that keep the length fields consistent (bytes inserted after
//! the certification data, whitespace and text in the PEM, chains with a certificate
//! dropped or repeated).
//!
//! The relation checked on every input is `tdx_differential`'s: whenever this crate
//! accepts, `dcap-qvl` accepts too and both report the same TCB statuses, advisories,
//! PPID and TD report fields; whenever `dcap-qvl` accepts and this crate refuses, the
//! refusal is one of the named deliberate differences (`tdx_differential::Deliberate`),
//! recognised by its typed error. Anything else fails, naming the case and mutation.
//!
//! `cargo test -p attestation-verifier --test dcap_qvl_differential`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;
mod tdx_differential;

use std::fmt::Write as _;
use std::ops::Range;

use attestation_verifier::crypto::AwsLc;
use attestation_verifier::verify::tdx::{TdxCollateral, TdxVerifier};
use tdx_differential::{Agreement, Tally, policy, reference_collateral, relation};

/// Offsets of a quote's regions, read here without this crate's parser.
#[derive(Debug)]
struct Layout {
    header: Range<usize>,
    /// The v5 body descriptor (type and size), empty for v3 and v4.
    body_descriptor: Range<usize>,
    body: Range<usize>,
    sig_len: Range<usize>,
    signature: Range<usize>,
    attestation_key: Range<usize>,
    cert_type: Range<usize>,
    cert_size: Range<usize>,
    qe_report: Range<usize>,
    qe_report_signature: Range<usize>,
    auth_size: Range<usize>,
    auth_data: Range<usize>,
    pck_type: Range<usize>,
    pck_size: Range<usize>,
    /// The PEM text (with its NUL terminator, if any).
    pck: Range<usize>,
    /// Each `BEGIN` .. `END` block of the PEM text, in order.
    pem_blocks: Vec<Range<usize>>,
    trailing: Range<usize>,
}

fn u16_at(b: &[u8], o: usize) -> usize {
    usize::from(u16::from_le_bytes([b[o], b[o + 1]]))
}

fn u32_at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

fn layout(q: &[u8]) -> Layout {
    let r = |start: usize, len: usize| start..start + len;
    let header = 0..48;
    let (body_descriptor, body) = match u16_at(q, 0) {
        3 => (48..48, r(48, 384)),
        4 => (48..48, r(48, 584)),
        5 => (48..54, r(54, u32_at(q, 50))),
        v => panic!("quote version {v}"),
    };
    let sig_len = r(body.end, 4);
    let signature = r(sig_len.end, 64);
    let attestation_key = r(signature.end, 64);
    // v4 and v5 wrap the QE report in certification data of type 6; v3 has it bare.
    let wrapped = u16_at(q, 0) >= 4;
    let cert_type = r(attestation_key.end, if wrapped { 2 } else { 0 });
    let cert_size = r(cert_type.end, if wrapped { 4 } else { 0 });
    let qe_report = r(cert_size.end, 384);
    let qe_report_signature = r(qe_report.end, 64);
    let auth_size = r(qe_report_signature.end, 2);
    let auth_data = r(auth_size.end, u16_at(q, auth_size.start));
    let pck_type = r(auth_data.end, 2);
    let pck_size = r(pck_type.end, 4);
    let pck = r(pck_size.end, u32_at(q, pck_size.start));
    let sig_end = sig_len.end + u32_at(q, sig_len.start);
    assert_eq!(
        sig_end, pck.end,
        "certification data ends the signature data"
    );
    if wrapped {
        assert_eq!(
            cert_size.end + u32_at(q, cert_size.start),
            pck.end,
            "the PCK chain ends the certification data"
        );
    }
    let mut pem_blocks = Vec::new();
    let mut at = pck.start;
    while let Some(b) = find(&q[..pck.end], BEGIN, at) {
        let e = find(&q[..pck.end], END, b).unwrap() + END.len();
        pem_blocks.push(b..e);
        at = e;
    }
    Layout {
        header,
        body_descriptor,
        body,
        sig_len,
        signature,
        attestation_key,
        cert_type,
        cert_size,
        qe_report,
        qe_report_signature,
        auth_size,
        auth_data,
        pck_type,
        pck_size,
        pck,
        pem_blocks,
        trailing: sig_end..q.len(),
    }
}

/// A named input derived from a case's quote.
struct Mutation {
    name: String,
    bytes: Vec<u8>,
}

/// `count` positions spread evenly over `range` (all of it when shorter).
fn spread(range: &Range<usize>, count: usize) -> Vec<usize> {
    let len = range.len();
    if len <= count {
        return range.clone().collect();
    }
    (0..count)
        .map(|i| range.start + i * (len - 1) / (count - 1))
        .collect()
}

/// Where a PEM block's text after its BEGIN line starts.
fn body_start(block: &Range<usize>) -> usize {
    block.start + BEGIN.len()
}

/// Replaces `at` in the PCK chain's text with `with`, and fixes the three length fields
/// that enclose it (PCK data, certification data, signature data).
fn splice_pck(q: &[u8], l: &Layout, at: Range<usize>, with: &[u8]) -> Vec<u8> {
    assert!(l.pck.start <= at.start && at.end <= l.pck.end);
    let mut out = q[..at.start].to_vec();
    out.extend_from_slice(with);
    out.extend_from_slice(&q[at.end..]);
    let delta = with.len() as i64 - at.len() as i64;
    for field in [&l.pck_size, &l.cert_size, &l.sig_len] {
        if field.is_empty() {
            continue;
        }
        let v = u32_at(q, field.start) as i64 + delta;
        out[field.clone()].copy_from_slice(&u32::try_from(v).unwrap().to_le_bytes());
    }
    out
}

/// Inserts `with` at the end of the certification data (after the PCK chain) and fixes the
/// certification data and signature data lengths, leaving the PCK data size as it is.
fn grow_certification_data(q: &[u8], l: &Layout, with: &[u8]) -> Vec<u8> {
    let mut out = q[..l.pck.end].to_vec();
    out.extend_from_slice(with);
    out.extend_from_slice(&q[l.pck.end..]);
    for field in [&l.cert_size, &l.sig_len] {
        if field.is_empty() {
            continue;
        }
        let v = u32_at(q, field.start) + with.len();
        out[field.clone()].copy_from_slice(&u32::try_from(v).unwrap().to_le_bytes());
    }
    out
}

/// The deterministic mutations of one quote; `dense` spreads more flips per region.
fn mutations(q: &[u8], l: &Layout, dense: bool) -> Vec<Mutation> {
    let mut out = Vec::new();
    let per_region = if dense { 16 } else { 6 };
    let mut regions: Vec<(String, Range<usize>, usize)> = vec![
        ("header".into(), l.header.clone(), per_region),
        ("v5 body descriptor".into(), l.body_descriptor.clone(), 6),
        ("TD report".into(), l.body.clone(), per_region * 2),
        ("signature data length".into(), l.sig_len.clone(), 4),
        ("quote signature".into(), l.signature.clone(), per_region),
        (
            "attestation key".into(),
            l.attestation_key.clone(),
            per_region,
        ),
        ("certification data type".into(), l.cert_type.clone(), 2),
        ("certification data size".into(), l.cert_size.clone(), 4),
        ("QE report".into(), l.qe_report.clone(), per_region * 2),
        (
            "QE report signature".into(),
            l.qe_report_signature.clone(),
            per_region,
        ),
        ("QE auth data size".into(), l.auth_size.clone(), 2),
        ("QE auth data".into(), l.auth_data.clone(), per_region),
        ("PCK data type".into(), l.pck_type.clone(), 2),
        ("PCK data size".into(), l.pck_size.clone(), 4),
        ("trailing bytes".into(), l.trailing.clone(), 4),
    ];
    for (i, b) in l.pem_blocks.iter().enumerate() {
        let body = b.start + BEGIN.len()..b.end - END.len();
        regions.push((format!("PEM block {i} BEGIN line"), b.start..body.start, 4));
        regions.push((
            format!("PEM block {i} base64"),
            body.clone(),
            per_region * 2,
        ));
        regions.push((format!("PEM block {i} END line"), body.end..b.end, 4));
    }
    let last_pem = l.pem_blocks.last().map_or(l.pck.start, |b| b.end);
    regions.push(("PEM text after the blocks".into(), last_pem..l.pck.end, 4));
    // Bit flips: the low bit and the high bit alternately (a base64 or PEM character
    // with its low bit flipped is often another valid character).
    for (name, range, count) in &regions {
        for (k, at) in spread(range, *count).into_iter().enumerate() {
            let mask = if k % 2 == 0 { 0x01 } else { 0x80 };
            let mut bytes = q.to_vec();
            bytes[at] ^= mask;
            out.push(Mutation {
                name: format!("flip {mask:#04x} at {at} ({name})"),
                bytes,
            });
        }
    }
    // Truncations at and around every region boundary.
    let mut cuts: Vec<usize> = vec![0, 1, q.len() - 1];
    for (_, r, _) in &regions {
        for c in [r.start, r.end] {
            cuts.extend([c.saturating_sub(1), c, c + 1]);
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    for c in cuts.into_iter().filter(|c| *c < q.len()) {
        out.push(Mutation {
            name: format!("truncated to {c} bytes"),
            bytes: q[..c].to_vec(),
        });
    }
    // Appended bytes.
    for (what, tail) in [
        ("one zero byte", vec![0u8]),
        ("64 bytes 0xff", vec![0xff; 64]),
        ("a copy of the quote", q.to_vec()),
    ] {
        let mut bytes = q.to_vec();
        bytes.extend_from_slice(&tail);
        out.push(Mutation {
            name: format!("appended {what}"),
            bytes,
        });
    }
    // Edits that keep every length field consistent.
    for (what, with) in [
        ("a zero byte", &b"\0"[..]),
        ("16 bytes 0xaa", &[0xaa; 16][..]),
    ] {
        out.push(Mutation {
            name: format!("{what} after the PCK data, inside the certification data"),
            bytes: grow_certification_data(q, l, with),
        });
    }
    let pck_end = l.pck.end;
    for (what, with) in [
        ("a NUL", &b"\0"[..]),
        ("a newline", b"\n"),
        ("text", b"trailing text"),
        ("a stray END line", END),
        ("a stray BEGIN line", BEGIN),
        (
            "an empty PEM block",
            b"-----BEGIN X-----\n-----END X-----\n",
        ),
    ] {
        out.push(Mutation {
            name: format!("{what} appended to the PCK chain"),
            bytes: splice_pck(q, l, pck_end..pck_end, with),
        });
    }
    let b = &l.pem_blocks;
    if let Some(first) = b.first() {
        out.push(Mutation {
            name: "text before the first PEM block".into(),
            bytes: splice_pck(q, l, first.start..first.start, b"leading text\n"),
        });
        // CRLF line endings in the first block.
        let crlf: Vec<u8> = q[first.clone()]
            .iter()
            .flat_map(|c| {
                if *c == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![*c]
                }
            })
            .collect();
        out.push(Mutation {
            name: "CRLF line endings in PEM block 0".into(),
            bytes: splice_pck(q, l, first.clone(), &crlf),
        });
        // The base64 of the first block on one line.
        let body = first.start + BEGIN.len()..first.end - END.len();
        let mut one_line = BEGIN.to_vec();
        one_line.push(b'\n');
        one_line.extend(q[body].iter().filter(|c| !c.is_ascii_whitespace()));
        one_line.push(b'\n');
        one_line.extend_from_slice(END);
        out.push(Mutation {
            name: "PEM block 0's base64 on one line".into(),
            bytes: splice_pck(q, l, first.clone(), &one_line),
        });
        // A blank line inside the first block's base64, and a vertical tab (which `pem`
        // takes for whitespace) in place of its first line break.
        let second_line = find(q, b"\n", body_start(first) + 1).unwrap() + 1;
        out.push(Mutation {
            name: "a blank line inside PEM block 0's base64".into(),
            bytes: splice_pck(q, l, second_line..second_line, b"\n"),
        });
        out.push(Mutation {
            name: "a vertical tab for a line break in PEM block 0".into(),
            bytes: splice_pck(q, l, second_line - 1..second_line, b"\x0b"),
        });
        // A PEM header line in the first block.
        let at = first.start + BEGIN.len() + 1;
        out.push(Mutation {
            name: "a PEM header line in block 0".into(),
            bytes: splice_pck(q, l, at..at, b"Proc-Type: 4,ENCRYPTED\n\n"),
        });
    }
    for (i, blk) in b.iter().enumerate() {
        out.push(Mutation {
            name: format!("PEM block {i} removed"),
            bytes: splice_pck(q, l, blk.clone(), b""),
        });
        let mut twice = q[blk.clone()].to_vec();
        twice.push(b'\n');
        twice.extend_from_slice(&q[blk.clone()]);
        out.push(Mutation {
            name: format!("PEM block {i} repeated"),
            bytes: splice_pck(q, l, blk.clone(), &twice),
        });
        out.push(Mutation {
            name: format!("a dash right before PEM block {i}"),
            bytes: splice_pck(q, l, blk.start..blk.start, b"-"),
        });
        let mut label = q[blk.clone()].to_vec();
        label[11] = b'X'; // "-----BEGIN XERTIFICATE-----"
        out.push(Mutation {
            name: format!("PEM block {i} relabelled"),
            bytes: splice_pck(q, l, blk.clone(), &label),
        });
    }
    if b.len() >= 2 {
        let mut swapped = q[b[1].clone()].to_vec();
        swapped.push(b'\n');
        swapped.extend_from_slice(&q[b[0].clone()]);
        out.push(Mutation {
            name: "PEM blocks 0 and 1 swapped".into(),
            bytes: splice_pck(q, l, b[0].start..b[1].end, &swapped),
        });
    }
    out
}

#[test]
fn ours_accepts_only_what_dcap_qvl_accepts_under_mutation_works() {
    let policy = policy();
    let mut total = Tally::default();
    let mut failures = String::new();
    let mut bases = 0;
    for c in common::cases("tdx") {
        if !c.has("collateral.json") || !c.has("quote.bin") {
            continue;
        }
        bases += 1;
        let quote = c.file("quote.bin");
        let collateral = TdxCollateral::from_json(&c.file("collateral.json")).unwrap();
        let reference = reference_collateral(&collateral);
        let now = c.verification_time();
        let mut verifier = TdxVerifier::new(AwsLc).unwrap();
        let mut tally = Tally::default();

        // The unmutated quote: dcap-qvl gives the case's recorded verdict (its
        // `confirmed_by`), and the relation holds.
        let valid = dcap_qvl::verify::ring::verify(&quote, &reference, now);
        assert_eq!(
            valid.is_ok(),
            c.expected_valid(),
            "{}: dcap-qvl {:?}",
            c.name,
            valid.as_ref().err().map(|e| format!("{e:#}"))
        );
        let mut inputs = vec![("the quote itself".to_string(), quote.clone())];
        // Quotes that verify get the dense set; the others (which no mutation should make
        // valid) a sparser one.
        let l = layout(&quote);
        inputs.extend(
            mutations(&quote, &l, valid.is_ok())
                .into_iter()
                .map(|m| (m.name, m.bytes)),
        );
        for (name, bytes) in &inputs {
            match relation(&mut verifier, &policy, &collateral, &reference, now, bytes) {
                Ok(a) => tally.add(a),
                Err(e) => {
                    let _ = writeln!(failures, "{}: {name}: {e}", c.name);
                }
            }
        }
        println!("{}: {} inputs, {:?}", c.name, inputs.len(), tally.0);
        total.merge(&tally);
    }
    println!("all: {} inputs, {:?}", total.total(), total.0);
    assert!(failures.is_empty(), "the relation fails:\n{failures}");
    assert!(bases >= 9, "{bases} cases with collateral");
    // The vectors hold valid quotes, and some mutations (bytes appended after the quote,
    // PEM whitespace) keep them valid for both: otherwise the comparison of accepted
    // results never ran.
    assert!(total.get(Agreement::BothAccept) >= 10, "{:?}", total.0);
}

//! What the fuzz targets share: the real vectors their whole-verification targets check
//! fuzzed bytes against (read from `../shared/vectors`, override `SIGIL_VECTORS`; never copied
//! into the repository), loaded once per process.

use std::sync::{Mutex, OnceLock, PoisonError};

use attestation_verifier::time::UnixTime;
use sigil_test_support::Case;

/// A PEM file's first block as DER, or the bytes themselves when they are not PEM.
pub fn der(bytes: Vec<u8>) -> Vec<u8> {
    match pem::parse(&bytes) {
        Ok(p) => p.into_contents(),
        Err(_) => bytes,
    }
}

/// The verification time of a case.
pub fn at(c: &Case) -> UnixTime {
    UnixTime(c.verification_time())
}

/// A real SEV-SNP case: report, VCEK, ASK and ARK (DER), and its time.
pub struct Snp {
    /// `report.bin`.
    pub report: Vec<u8>,
    /// The VCEK.
    pub vek: Vec<u8>,
    /// The ASK.
    pub ask: Vec<u8>,
    /// The ARK.
    pub ark: Vec<u8>,
    /// The case's verification time.
    pub now: UnixTime,
}

/// `snp/milan-v3-oak-oc-release`.
pub fn snp() -> &'static Snp {
    static S: OnceLock<Snp> = OnceLock::new();
    S.get_or_init(|| {
        let c = Case::load("snp", "milan-v3-oak-oc-release");
        Snp {
            report: c.file("report.bin"),
            vek: c.file("vcek.der"),
            ask: der(c.file("ask.pem")),
            ark: der(c.file("ark.pem")),
            now: at(&c),
        }
    })
}

/// A real TDX case: quote, collateral bundle JSON, and its time.
pub struct Tdx {
    /// `quote.bin`.
    pub quote: Vec<u8>,
    /// `collateral.json`.
    pub collateral_json: Vec<u8>,
    /// The parsed collateral.
    pub collateral: attestation_verifier::verify::tdx::TdxCollateral,
    /// The case's verification time.
    pub now: UnixTime,
}

/// `tdx/tdx-v4-dcap-qvl-sample`.
pub fn tdx() -> &'static Tdx {
    static T: OnceLock<Tdx> = OnceLock::new();
    T.get_or_init(|| {
        let c = Case::load("tdx", "tdx-v4-dcap-qvl-sample");
        let collateral_json = c.file("collateral.json");
        let collateral =
            attestation_verifier::verify::tdx::TdxCollateral::from_json(&collateral_json)
                .expect("the vector's collateral parses");
        Tdx {
            quote: c.file("quote.bin"),
            collateral_json,
            collateral,
            now: at(&c),
        }
    })
}

/// RTMR0..RTMR3 of a real TDX quote whose CCEL replays to them (the go-tdx-guest COS boot).
pub fn quote_rtmrs() -> [[u8; 48]; 4] {
    static R: OnceLock<[[u8; 48]; 4]> = OnceLock::new();
    *R.get_or_init(|| {
        let quote = sigil_test_support::vectors::vector(
            "measured/tdx-eventlog/go-tdx-guest-cos113/quote.bin",
        );
        attestation_verifier::evidence::tdx::parse_tdx_quote(&quote)
            .expect("the vector's quote parses")
            .body
            .rtmr
    })
}

/// A real NVIDIA GPU case: report, chain (DER, leaf first), nonce and time.
pub struct Gpu {
    /// `report.bin`.
    pub report: Vec<u8>,
    /// The certificate chain.
    pub chain: Vec<Vec<u8>>,
    /// The nonce the report answers.
    pub nonce: [u8; 32],
    /// The case's verification time.
    pub now: UnixTime,
}

/// `nvgpu/hopper-nvtrust-sample`.
pub fn gpu() -> &'static Gpu {
    static G: OnceLock<Gpu> = OnceLock::new();
    G.get_or_init(|| {
        let c = Case::load("nvgpu", "hopper-nvtrust-sample");
        let chain = pem::parse_many(c.file("cert_chain.pem"))
            .expect("the vector's chain is PEM")
            .into_iter()
            .map(pem::Pem::into_contents)
            .collect();
        let nonce_hex = String::from_utf8(c.file("nonce.hex")).expect("hex text");
        let mut nonce = [0u8; 32];
        let bytes: Vec<u8> = (0..nonce_hex.trim().len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(nonce_hex.trim().get(i..i + 2)?, 16).ok())
            .collect();
        nonce.copy_from_slice(&bytes);
        Gpu {
            report: c.file("report.bin"),
            chain,
            nonce,
            now: at(&c),
        }
    })
}

/// The goal's oracle (docs/fuzzing.md, "Forgeries"): what a verifier accepted carries exactly
/// the signed bytes of one of the genuine cases (`real`) its input was mutated from. Anything
/// else accepted is a forgery, the finding: this panics with where the bytes first differ from
/// the nearest genuine ones.
pub fn one_of_signed<'a>(what: &str, accepted: &[u8], real: impl IntoIterator<Item = &'a [u8]>) {
    let real: Vec<&[u8]> = real.into_iter().collect();
    if real.contains(&accepted) {
        return;
    }
    // The length of the longest prefix `accepted` shares with a genuine one.
    let at = real
        .iter()
        .map(|r| {
            accepted
                .iter()
                .zip(r.iter())
                .take_while(|(a, r)| a == r)
                .count()
        })
        .max()
        .unwrap_or(0);
    panic!(
        "accepted {what} whose signed bytes are none of the {} genuine ones: {} bytes, the \
         nearest differs first at byte {at}",
        real.len(),
        accepted.len()
    );
}

/// `<kind>/<case>/<file>` of every genuine case of the vectors (sorted by case): the cases
/// whose name does not start with `invalid-` (those hold tampered bytes, among others). A
/// mutated input may legitimately become another genuine case's bytes: the staging and release
/// reports of `snp/milan-v3-oak-oc-*` come from one chip and verify under one VCEK.
fn genuine(kind: &str, file: &str) -> Vec<Vec<u8>> {
    let dir = sigil_test_support::vectors::vectors_dir().join(kind);
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("the vectors' cases")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with("invalid-"))
        })
        .collect();
    cases.sort();
    let files: Vec<Vec<u8>> = cases
        .iter()
        .filter_map(|c| std::fs::read(c.join(file)).ok())
        .collect();
    assert!(!files.is_empty(), "no {kind}/*/{file} among the vectors");
    files
}

/// An SEV-SNP report `check_snp` accepted against [`snp`]'s chain: its signed bytes
/// (`0..0x2A0`) are a genuine report's.
pub fn snp_accepted(report: &[u8]) {
    use attestation_verifier::evidence::snp::parse_snp_report;
    static REAL: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let real = REAL.get_or_init(|| {
        genuine("snp", "report.bin")
            .iter()
            .filter_map(|r| parse_snp_report(r).ok())
            .map(|r| r.signed.to_vec())
            .collect()
    });
    let got = parse_snp_report(report).expect("an accepted report parses");
    one_of_signed(
        "SEV-SNP report",
        &got.signed,
        real.iter().map(Vec::as_slice),
    );
}

/// A TDX quote `check_tdx` accepted with [`tdx`]'s collateral is a genuine quote's signed
/// content: what the attestation key signed (header and body), the attestation key and QE
/// authentication data (bound by the QE report) and the QE report (signed by the PCK key) are
/// one genuine quote's, and every certificate of its PCK chain (by its to-be-signed bytes) is
/// in a genuine quote's chain.
pub fn tdx_accepted(quote: &[u8]) {
    use attestation_verifier::evidence::tdx::{TdxQuote, parse_tdx_quote};
    use attestation_verifier::verify::x509::Cert;
    fn tbs(q: &TdxQuote) -> Vec<Vec<u8>> {
        q.pck_chain_der()
            .map(|chain| {
                chain
                    .iter()
                    .filter_map(|d| Cert::from_der("PCK chain", d).ok())
                    .map(|c| c.tbs().to_vec())
                    .collect()
            })
            .unwrap_or_default()
    }
    static REAL: OnceLock<(Vec<TdxQuote>, Vec<Vec<u8>>)> = OnceLock::new();
    let (quotes, certs) = REAL.get_or_init(|| {
        let quotes: Vec<TdxQuote> = genuine("tdx", "quote.bin")
            .iter()
            .filter_map(|q| parse_tdx_quote(q).ok())
            .collect();
        let certs = quotes.iter().flat_map(tbs).collect();
        (quotes, certs)
    });
    let got = parse_tdx_quote(quote).expect("an accepted quote parses");
    // The four parts, each after its length, so that no two splits compare equal.
    let signed = |q: &TdxQuote| -> Vec<u8> {
        [
            q.signed.as_slice(),
            &q.attestation_key,
            &q.qe_report_raw,
            &q.qe_auth_data,
        ]
        .iter()
        .flat_map(|part| {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes();
            len.into_iter().chain(part.iter().copied())
        })
        .collect()
    };
    let real: Vec<Vec<u8>> = quotes.iter().map(signed).collect();
    one_of_signed(
        "TDX quote (header and body, attestation key, QE report, QE authentication data)",
        &signed(&got),
        real.iter().map(Vec::as_slice),
    );
    let got_tbs = tbs(&got);
    assert!(!got_tbs.is_empty(), "an accepted quote's PCK chain decodes");
    for t in got_tbs {
        one_of_signed(
            "TDX quote (PCK chain certificate)",
            &t,
            certs.iter().map(Vec::as_slice),
        );
    }
}

/// TDX collateral the verifier accepted for [`tdx`]'s quote is genuine, signed part for signed
/// part: the TCB info and QE identity JSON objects (as signed), the CRLs and every certificate
/// of the issuer chains (to-be-signed bytes) are those of a genuine case's `collateral.json`.
pub fn tdx_collateral_verified(c: &attestation_verifier::verify::tdx::TdxCollateral) {
    use attestation_verifier::verify::tdx::TdxCollateral;
    use attestation_verifier::verify::x509::{Cert, Crl};
    /// The signed parts of one bundle: TCB info, QE identity, then CRL and certificate
    /// to-be-signed bytes.
    fn signed_parts(c: &TdxCollateral) -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
        let p = c.parts();
        let crls = [&p.root_ca_crl, &p.pck_crl]
            .into_iter()
            .filter_map(|d| Crl::from_der("CRL", d).ok())
            .map(|crl| crl.tbs().to_vec());
        let certs = [
            &p.pck_crl_issuer_chain,
            &p.tcb_info_issuer_chain,
            &p.qe_identity_issuer_chain,
        ]
        .into_iter()
        .flat_map(|pem| pem::parse_many(pem).unwrap_or_default())
        .filter_map(|b| Cert::from_der("issuer chain", b.contents()).ok())
        .map(|cert| cert.tbs().to_vec());
        (
            p.tcb_info.clone(),
            p.qe_identity.clone(),
            crls.chain(certs).collect(),
        )
    }
    static REAL: OnceLock<Vec<(Vec<u8>, Vec<u8>, Vec<Vec<u8>>)>> = OnceLock::new();
    let real = REAL.get_or_init(|| {
        genuine("tdx", "collateral.json")
            .iter()
            .filter_map(|j| TdxCollateral::from_json(j).ok())
            .map(|c| signed_parts(&c))
            .collect()
    });
    let (tcb_info, qe_identity, signed) = signed_parts(c);
    one_of_signed(
        "TDX collateral (TCB info)",
        &tcb_info,
        real.iter().map(|r| r.0.as_slice()),
    );
    one_of_signed(
        "TDX collateral (QE identity)",
        &qe_identity,
        real.iter().map(|r| r.1.as_slice()),
    );
    for part in &signed {
        one_of_signed(
            "TDX collateral (CRL or issuer certificate)",
            part,
            real.iter().flat_map(|r| r.2.iter().map(Vec::as_slice)),
        );
    }
}

/// The genuine RIMs of the vectors, parsed: every RIM of `nvgpu-extra/rims-nvtrust/` and the
/// XML RIMs of `nvgpu-extra/nvat/` but its `incorrect_*` ones (a wrong chain or signature).
fn real_rims() -> &'static [attestation_verifier::evidence::rim::Rim] {
    use attestation_verifier::evidence::rim::parse_rim;
    static R: OnceLock<Vec<attestation_verifier::evidence::rim::Rim>> = OnceLock::new();
    R.get_or_init(|| {
        let dir = sigil_test_support::vectors::vectors_dir().join("nvgpu-extra");
        let listed = |sub: &str| -> Vec<std::path::PathBuf> {
            let mut paths: Vec<_> = std::fs::read_dir(dir.join(sub))
                .expect("the vectors' RIMs")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            paths.sort();
            paths
        };
        let nvat = listed("nvat").into_iter().filter(|p| {
            p.extension().is_some_and(|x| x == "xml")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with("incorrect"))
        });
        let rims: Vec<_> = listed("rims-nvtrust")
            .into_iter()
            .chain(nvat)
            .filter_map(|p| parse_rim(&std::fs::read(&p).expect("a vector RIM")).ok())
            .collect();
        assert!(!rims.is_empty(), "no RIMs among the vectors");
        rims
    })
}

/// A RIM whose signature and chain verified under NVIDIA's pinned RIM root says what one of
/// the real RIMs says: its identity, versions and every golden measurement (an XML document
/// can be written many ways with the same signed canonical form; what it says cannot change).
pub fn rim_verified(rim: &attestation_verifier::evidence::rim::Rim) {
    let same = |r: &attestation_verifier::evidence::rim::Rim| {
        r.tag_id == rim.tag_id
            && r.name == rim.name
            && r.colloquial_version == rim.colloquial_version
            && r.product == rim.product
            && r.measurements == rim.measurements
    };
    if !real_rims().iter().any(same) {
        panic!(
            "accepted a RIM that says what no real RIM says: tag {:?}, version {:?}, {} \
             measurements",
            rim.tag_id,
            rim.colloquial_version,
            rim.measurements.len()
        );
    }
}

/// The whole GPU verification of `report` (the real case's when `None`) with the given
/// chain (the real case's when `None`), RIMs and OCSP responses, against the real nonce and
/// time under the default policy. The default policy refuses the real case (it carries no RIMs
/// of its driver), so acceptance is not the test: when the report verified (its chain, its
/// signature, every RIM and OCSP response supplied), its signed bytes and every certificate of
/// its chain (to-be-signed bytes) must be genuine ([`one_of_signed`]).
pub fn check_real_gpu(
    report: Option<&[u8]>,
    chain: Option<&[Vec<u8>]>,
    rims: &[Vec<u8>],
    ocsp: &[Vec<u8>],
) -> GpuChecked {
    use attestation_verifier::check_gpu;
    use attestation_verifier::crypto::RustCrypto;
    use attestation_verifier::evidence::nvgpu::parse_nvgpu_report;
    use attestation_verifier::policy::Policy;
    use attestation_verifier::roots::nvidia;
    use attestation_verifier::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier};
    use attestation_verifier::verify::x509::Cert;
    let g = gpu();
    let report = report.unwrap_or(&g.report);
    let chain = chain.unwrap_or(&g.chain);
    let collateral = NvGpuCollateral {
        cert_chain: chain,
        rims,
        ocsp,
    };
    static VERIFIER: Mutex<Option<NvGpuVerifier<RustCrypto>>> = Mutex::new(None);
    let (outcome, rim_verified) = long_lived(
        &VERIFIER,
        || NvGpuVerifier::new(RustCrypto).expect("pinned roots"),
        |verifier| {
            let before = verifier.cached_rims();
            let outcome = check_gpu(
                verifier,
                report,
                &collateral,
                &g.nonce,
                &Policy::default(),
                g.now,
            );
            // A RIM enters the verifier's lasting cache only once its signature and signing
            // chain verified (the cache is emptied when full, then the RIM goes in).
            (outcome, verifier.cached_rims() != before)
        },
    );
    // The claims carry the chain's length only from verified evidence.
    let verified = outcome
        .claims
        .as_ref()
        .is_some_and(|c| c.cert_chain_length.is_some());
    if verified {
        let signed = |r: &[u8]| {
            let parsed = parse_nvgpu_report(r).expect("a verified report parses");
            r.get(..parsed.signature_offset)
                .expect("the signature offset is inside the report")
                .to_vec()
        };
        static REAL: OnceLock<(Vec<Vec<u8>>, Vec<Cert>)> = OnceLock::new();
        let (reports, certs) = REAL.get_or_init(|| {
            let reports = genuine("nvgpu", "report.bin")
                .iter()
                .filter(|r| parse_nvgpu_report(r).is_ok())
                .map(|r| signed(r))
                .collect();
            let root = Cert::from_der("device root", nvidia::DEVICE_IDENTITY_CA)
                .expect("the pinned root decodes");
            let certs = genuine("nvgpu", "cert_chain.pem")
                .iter()
                .flat_map(|pem| pem::parse_many(pem).unwrap_or_default())
                .filter_map(|p| Cert::from_der("device chain", p.contents()).ok())
                .chain(core::iter::once(root))
                .collect();
            (reports, certs)
        });
        one_of_signed(
            "GPU report",
            &signed(report),
            reports.iter().map(Vec::as_slice),
        );
        // No OCSP response among the vectors or seeds is NVIDIA's (the seeds' are made by a
        // test CA): a revocation status established for the real chain is a forgery.
        if let Some(o) = outcome
            .claims
            .as_ref()
            .and_then(|c| c.ocsp.as_ref())
            .and_then(|o| o.iter().find(|o| o.status != "missing"))
        {
            panic!(
                "accepted an OCSP status ({}) for {}, and no genuine response is among the seeds",
                o.status, o.subject
            );
        }
        for part in chain {
            if let Ok(c) = Cert::from_der("device chain", part) {
                one_of_signed(
                    "GPU device certificate",
                    c.tbs(),
                    certs.iter().map(Cert::tbs),
                );
            }
        }
    }
    GpuChecked {
        verified,
        rim_verified,
    }
}

/// What [`check_real_gpu`] saw verify.
#[derive(Clone, Copy, Debug)]
pub struct GpuChecked {
    /// The report verified, with its chain and every RIM and OCSP response supplied.
    pub verified: bool,
    /// A RIM not verified before in this process verified (signature and signing chain,
    /// under NVIDIA's pinned RIM root, at the case's time), whether or not it applies to the
    /// report.
    pub rim_verified: bool,
}

/// Splits fuzz input into at most `max` parts at a 4-byte separator, so one input can carry
/// several byte strings (a chain of certificates, a list of RIMs) and still mutate well.
pub fn split(data: &[u8], max: usize) -> Vec<&[u8]> {
    const SEP: &[u8] = b"\xff\x00\xff\x00";
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < max {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// Joins parts with [`split`]'s separator (for seeds).
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b"\xff\x00\xff\x00"[..])
}

/// A policy that parsed survives its round trips: TOML (`to_toml`, `from_toml`) and
/// canonical bytes (`canonical_bytes`, `from_canonical_bytes`) give the same policy id back.
pub fn check_policy_round_trips(p: &attestation_verifier::policy::Policy) {
    use attestation_verifier::policy::Policy;
    let id = p.id();
    let text = p.to_toml();
    let again = Policy::from_toml(&text)
        .unwrap_or_else(|e| panic!("to_toml output does not parse: {e}\n{text}"));
    assert_eq!(
        again.id(),
        id,
        "TOML round trip changes the policy:\n{text}"
    );
    let bytes = p.canonical_bytes();
    let decoded = Policy::from_canonical_bytes(&bytes)
        .unwrap_or_else(|e| panic!("canonical bytes do not decode: {e}"));
    assert_eq!(decoded.id(), id, "canonical round trip changes the policy");
}

/// Runs `f` with this process's one verifier in `slot`, made by `make` on first use. The
/// agent and the chain keep their verifiers for their lifetime, and a verifier keeps what it
/// verified (certificate chains, RIMs, collateral; by content hash, bounded): a fresh
/// verifier per input verified the target's fixed chains and pinned roots again for every
/// input, most of each unit's time. A changed chain, RIM or collateral is still verified
/// in full (it hashes differently), as in production; `x509_chain`, `rim_xml` and
/// `tdx_collateral` fuzz those.
pub fn long_lived<V, R>(
    slot: &'static Mutex<Option<V>>,
    make: impl FnOnce() -> V,
    f: impl FnOnce(&mut V) -> R,
) -> R {
    let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(make))
}

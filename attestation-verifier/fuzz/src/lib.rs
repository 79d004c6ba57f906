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

/// The whole GPU verification of `report` (the real case's when `None`) with the given
/// chain (the real case's when `None`), RIMs and OCSP responses, against the real nonce and
/// time under the default policy; the outcome is dropped (a fuzz target looks for panics).
pub fn check_real_gpu(
    report: Option<&[u8]>,
    chain: Option<&[Vec<u8>]>,
    rims: &[Vec<u8>],
    ocsp: &[Vec<u8>],
) {
    use attestation_verifier::check_gpu;
    use attestation_verifier::crypto::RustCrypto;
    use attestation_verifier::policy::Policy;
    use attestation_verifier::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier};
    let g = gpu();
    let collateral = NvGpuCollateral {
        cert_chain: chain.unwrap_or(&g.chain),
        rims,
        ocsp,
    };
    static VERIFIER: Mutex<Option<NvGpuVerifier<RustCrypto>>> = Mutex::new(None);
    long_lived(
        &VERIFIER,
        || NvGpuVerifier::new(RustCrypto).expect("pinned roots"),
        |verifier| {
            let _ = check_gpu(
                verifier,
                report.unwrap_or(&g.report),
                &collateral,
                &g.nonce,
                &Policy::default(),
                g.now,
            );
        },
    );
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

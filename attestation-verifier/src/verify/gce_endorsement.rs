//! Google's launch endorsements of GCE confidential-VM firmware.
//!
//! On GCE the SEV-SNP launch MEASUREMENT and the TDX MRTD cover Google's own firmware
//! (a build of OVMF the guest cannot choose), so a policy author cannot compute them from
//! an image. Google publishes, per firmware build, a signed `VMLaunchEndorsement` (its
//! `gce-tcb-verifier` project, `proto/endorsement.proto`): a serialized
//! `VMGoldenMeasurement` (the build's time, changelist and commit, the firmware's SHA-384,
//! the expected SEV-SNP MEASUREMENT per number of launch VMSAs and TDX MRTD per memory
//! configuration, the signing key's certificate) and an RSASSA-PSS SHA-256 signature over
//! exactly those bytes. The signing certificate is issued by Google's confidential
//! computing TCB root (`GCE-cc-tcb-root_1.crt`, published at
//! `https://pki.goog/cloud_integrity/`). An endorsement is found by its measurement:
//! `gs://gce_tcb_integrity/ovmf_x64_csm/sevsnp/<MEASUREMENT hex>.binarypb` and
//! `.../tdx/<MRTD hex>.binarypb`.
//!
//! [`verify_gce_endorsement`] checks one offline against a root the caller supplies: the
//! signing certificate is issued and signed by that root (directly, as Google's own
//! verifier requires: the `ca_bundle` field is not a source of trust), both are valid at
//! the verification time, the signing key is RSA and its PSS signature covers the
//! golden measurement, every digest has its length, and an endorsement made after Google's
//! release change of August 2024 names its provenance (changelist or commit). The root is
//! not built in (it is not among the vendor roots this verifier pins): the caller pins it,
//! and [`GceEndorsement::root_sha256`] says which one vouched. [`GceEndorsement::snp`] and
//! [`GceEndorsement::tdx`] then say whether a report's MEASUREMENT or MRTD is endorsed.

use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::crypto::{Crypto, RsaHash};
use crate::time::UnixTime;
use crate::verify::x509::{Cert, KeyKind, X509Error};

/// The most bytes of an endorsement read (Google's are about 4 KiB: two certificates and
/// a few dozen digests).
pub const MAX_ENDORSEMENT_LEN: usize = 64 * 1024;

/// Endorsements made from this time on (2024-08-02T00:00:00Z) must name their provenance:
/// Google's release process recorded none for some builds before it (gce-tcb-verifier
/// `verify.go`, `uefiReleaseChangeDate`).
pub const PROVENANCE_REQUIRED_FROM: UnixTime = UnixTime(1_722_556_800);

/// The wire messages of Google's `endorsement.proto` (package `cloud_vmm_proto`), with its
/// field numbers. Decoded with prost: what Google's own tools use, and the one protobuf
/// decoder this crate needs.
pub mod wire {
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// `VMLaunchEndorsement`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmLaunchEndorsement {
        /// The serialized `VMGoldenMeasurement`, as signed.
        #[prost(bytes = "vec", tag = "1")]
        pub serialized_uefi_golden: Vec<u8>,
        /// RSASSA-PSS SHA-256 over `serialized_uefi_golden`.
        #[prost(bytes = "vec", tag = "2")]
        pub signature: Vec<u8>,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        /// Seconds since the Unix epoch.
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        /// Nanoseconds.
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    /// `VMGoldenMeasurement`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmGoldenMeasurement {
        /// When the endorsement was made.
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        /// The changelist the firmware was built from.
        #[prost(uint64, tag = "2")]
        pub cl_spec: u64,
        /// The commit the firmware was built from.
        #[prost(bytes = "vec", tag = "3")]
        pub commit: Vec<u8>,
        /// The signing key's certificate, DER.
        #[prost(bytes = "vec", tag = "4")]
        pub cert: Vec<u8>,
        /// SHA-384 of the firmware binary.
        #[prost(bytes = "vec", tag = "5")]
        pub digest: Vec<u8>,
        /// PEM certificates from the root to the last intermediate (informational).
        #[prost(bytes = "vec", tag = "6")]
        pub ca_bundle: Vec<u8>,
        /// SEV-SNP reference values.
        #[prost(message, optional, tag = "7")]
        pub sev_snp: Option<VmSevSnp>,
        /// TDX reference values.
        #[prost(message, optional, tag = "8")]
        pub tdx: Option<VmTdx>,
    }

    /// `VMSevSnp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmSevSnp {
        /// Google's security version number of the firmware on SEV-SNP.
        #[prost(uint32, tag = "1")]
        pub svn: u32,
        /// The expected MEASUREMENT per number of VMSAs at launch (the vCPU count).
        #[prost(btree_map = "uint32, bytes", tag = "2")]
        pub measurements: BTreeMap<u32, Vec<u8>>,
        /// The family id Google's firmware carries (16 bytes).
        #[prost(bytes = "vec", tag = "3")]
        pub family_id: Vec<u8>,
        /// This release's image id (16 bytes).
        #[prost(bytes = "vec", tag = "4")]
        pub image_id: Vec<u8>,
        /// The guest policy verifiers should expect.
        #[prost(uint64, tag = "5")]
        pub policy: u64,
        /// Optional PEM certificates of the ID key chain.
        #[prost(bytes = "vec", tag = "6")]
        pub ca_bundle: Vec<u8>,
    }

    /// `VMTdx.Measurement`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmTdxMeasurement {
        /// The VM's memory in GiB.
        #[prost(uint32, tag = "1")]
        pub ram_gib: u32,
        /// Whether all memory is accepted by the firmware.
        #[prost(bool, tag = "2")]
        pub early_accept: bool,
        /// The expected MRTD.
        #[prost(bytes = "vec", tag = "3")]
        pub mrtd: Vec<u8>,
    }

    /// `VMTdx`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmTdx {
        /// Google's security version number of the firmware on TDX.
        #[prost(uint32, tag = "1")]
        pub svn: u32,
        /// The expected MRTD per legal configuration.
        #[prost(message, repeated, tag = "2")]
        pub measurements: Vec<VmTdxMeasurement>,
    }
}

/// Why an endorsement was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GceEndorsementError {
    /// Larger than [`MAX_ENDORSEMENT_LEN`].
    #[error("the endorsement is {len} bytes, more than the {max} an endorsement may have")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Not a `VMLaunchEndorsement` or its golden measurement not a `VMGoldenMeasurement`.
    #[error("the {what} does not decode: {reason}")]
    Decode {
        /// `VMLaunchEndorsement` or `VMGoldenMeasurement`.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// A digest or id of the wrong length.
    #[error("{field} is {len} bytes, not {want}")]
    FieldLength {
        /// The field.
        field: String,
        /// Its length.
        len: usize,
        /// The length it must have.
        want: usize,
    },
    /// No signing certificate in the golden measurement.
    #[error("the golden measurement has no signing certificate")]
    NoSigningCert,
    /// The signing certificate or the root does not decode, is not valid at the
    /// verification time, or the root did not sign the certificate.
    #[error("{0}")]
    Cert(X509Error),
    /// The signing certificate does not name the root as its issuer.
    #[error("the signing certificate is not issued by the given root")]
    NotIssuedByRoot,
    /// The signing key is not an RSA key.
    #[error("the signing certificate's key is not RSA (the endorsement is RSASSA-PSS)")]
    SigningKeyNotRsa,
    /// The RSASSA-PSS SHA-256 signature does not cover the golden measurement.
    #[error("the endorsement's signature does not verify under its signing certificate")]
    Signature,
    /// Made after [`PROVENANCE_REQUIRED_FROM`] with neither changelist nor commit.
    #[error("the endorsement (made {made}) names no changelist and no commit")]
    MissingProvenance {
        /// When it was made.
        made: UnixTime,
    },
    /// The endorsement has no SEV-SNP reference values.
    #[error("the endorsement has no SEV-SNP measurements")]
    NoSevSnp,
    /// The endorsement has no TDX reference values.
    #[error("the endorsement has no TDX measurements")]
    NoTdx,
    /// The MEASUREMENT is not among the endorsed ones (for `vcpus` launch VMSAs when given).
    #[error("SEV-SNP measurement {measurement} is not endorsed{}", match .vcpus { Some(n) => std::format!(" for {n} vCPUs"), None => String::new() })]
    MeasurementNotEndorsed {
        /// The report's MEASUREMENT, hex.
        measurement: String,
        /// The vCPU count asked for.
        vcpus: Option<u32>,
    },
    /// The MRTD is not among the endorsed ones.
    #[error("MRTD {0} is not endorsed")]
    MrtdNotEndorsed(String),
    /// The firmware file given is not the one endorsed.
    #[error("the firmware's SHA-384 {got} is not the endorsed {want}")]
    FirmwareDigest {
        /// The endorsed digest, hex.
        want: String,
        /// The given firmware's, hex.
        got: String,
    },
}

/// SEV-SNP reference values of an endorsement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GceSevSnp {
    /// Google's security version number.
    pub svn: u32,
    /// The expected MEASUREMENT per vCPU count (launch VMSAs).
    pub measurements: BTreeMap<u32, [u8; 48]>,
    /// The family id, when given.
    pub family_id: Option<[u8; 16]>,
    /// The image id, when given.
    pub image_id: Option<[u8; 16]>,
    /// The guest policy to expect.
    pub policy: u64,
}

/// One endorsed TDX configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GceTdxMeasurement {
    /// The VM's memory, GiB.
    pub ram_gib: u32,
    /// Whether the firmware accepts all memory at boot.
    pub early_accept: bool,
    /// The expected MRTD.
    pub mrtd: [u8; 48],
}

/// TDX reference values of an endorsement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GceTdx {
    /// Google's security version number.
    pub svn: u32,
    /// The endorsed configurations.
    pub measurements: Vec<GceTdxMeasurement>,
}

/// A verified endorsement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GceEndorsement {
    /// When it was made, when it says.
    pub made: Option<UnixTime>,
    /// The firmware's changelist.
    pub cl_spec: u64,
    /// The firmware's commit.
    pub commit: Vec<u8>,
    /// SHA-384 of the firmware binary, when given.
    pub firmware_sha384: Option<[u8; 48]>,
    /// The signing certificate's subject common name.
    pub signer: Option<String>,
    /// SHA-256 of the root (DER) that vouched for the signing certificate.
    pub root_sha256: [u8; 32],
    /// SEV-SNP reference values.
    pub sev_snp: Option<GceSevSnp>,
    /// TDX reference values.
    pub tdx: Option<GceTdx>,
}

fn fixed<const N: usize>(field: String, bytes: &[u8]) -> Result<[u8; N], GceEndorsementError> {
    bytes
        .try_into()
        .map_err(|_| GceEndorsementError::FieldLength {
            field,
            len: bytes.len(),
            want: N,
        })
}

fn optional<const N: usize>(
    field: &str,
    bytes: &[u8],
) -> Result<Option<[u8; N]>, GceEndorsementError> {
    if bytes.is_empty() {
        Ok(None)
    } else {
        fixed(field.to_string(), bytes).map(Some)
    }
}

/// Verifies a serialized `VMLaunchEndorsement` against `root` (Google's
/// `GCE-cc-tcb-root`, DER, pinned by the caller) at `at` (module docs).
pub fn verify_gce_endorsement(
    crypto: &dyn Crypto,
    endorsement: &[u8],
    root: &[u8],
    at: UnixTime,
) -> Result<GceEndorsement, GceEndorsementError> {
    use prost::Message;
    if endorsement.len() > MAX_ENDORSEMENT_LEN {
        return Err(GceEndorsementError::TooLarge {
            len: endorsement.len(),
            max: MAX_ENDORSEMENT_LEN,
        });
    }
    let outer = wire::VmLaunchEndorsement::decode(endorsement).map_err(|e| {
        GceEndorsementError::Decode {
            what: "VMLaunchEndorsement",
            reason: e.to_string(),
        }
    })?;
    let golden = wire::VmGoldenMeasurement::decode(outer.serialized_uefi_golden.as_slice())
        .map_err(|e| GceEndorsementError::Decode {
            what: "VMGoldenMeasurement",
            reason: e.to_string(),
        })?;

    // The signing certificate, issued by the root, both valid now.
    if golden.cert.is_empty() {
        return Err(GceEndorsementError::NoSigningCert);
    }
    let root = Cert::from_der("GCE TCB root", root).map_err(GceEndorsementError::Cert)?;
    let signer = Cert::from_der("GCE endorsement signer", &golden.cert)
        .map_err(GceEndorsementError::Cert)?;
    if !signer.issued_by_name(&root) {
        return Err(GceEndorsementError::NotIssuedByRoot);
    }
    signer
        .verify_signed_by(crypto, "GCE endorsement signer", &root, "GCE TCB root")
        .map_err(GceEndorsementError::Cert)?;
    root.check_validity("GCE TCB root", at)
        .map_err(GceEndorsementError::Cert)?;
    signer
        .check_validity("GCE endorsement signer", at)
        .map_err(GceEndorsementError::Cert)?;

    // The signature over the golden measurement as sent.
    match signer.key_kind("GCE endorsement signer") {
        Ok(KeyKind::Rsa) => {}
        _ => return Err(GceEndorsementError::SigningKeyNotRsa),
    }
    crypto
        .verify_rsa_pss(
            RsaHash::Sha256,
            signer.public_key(),
            &outer.serialized_uefi_golden,
            &outer.signature,
        )
        .map_err(|_| GceEndorsementError::Signature)?;

    // What it says, every digest at its length.
    let made = golden
        .timestamp
        .as_ref()
        .and_then(|t| u64::try_from(t.seconds).ok())
        .map(UnixTime);
    if let Some(made) = made
        && made >= PROVENANCE_REQUIRED_FROM
        && golden.cl_spec == 0
        && golden.commit.is_empty()
    {
        return Err(GceEndorsementError::MissingProvenance { made });
    }
    let sev_snp = match &golden.sev_snp {
        None => None,
        Some(s) => {
            let mut measurements = BTreeMap::new();
            for (vcpus, m) in &s.measurements {
                measurements.insert(
                    *vcpus,
                    fixed(std::format!("sev_snp.measurements[{vcpus}]"), m)?,
                );
            }
            Some(GceSevSnp {
                svn: s.svn,
                measurements,
                family_id: optional("sev_snp.family_id", &s.family_id)?,
                image_id: optional("sev_snp.image_id", &s.image_id)?,
                policy: s.policy,
            })
        }
    };
    let tdx = match &golden.tdx {
        None => None,
        Some(t) => {
            let mut measurements = Vec::with_capacity(t.measurements.len());
            for (i, m) in t.measurements.iter().enumerate() {
                measurements.push(GceTdxMeasurement {
                    ram_gib: m.ram_gib,
                    early_accept: m.early_accept,
                    mrtd: fixed(std::format!("tdx.measurements[{i}].mrtd"), &m.mrtd)?,
                });
            }
            Some(GceTdx {
                svn: t.svn,
                measurements,
            })
        }
    };
    Ok(GceEndorsement {
        made,
        cl_spec: golden.cl_spec,
        commit: golden.commit,
        firmware_sha384: optional("digest", &golden.digest)?,
        signer: signer.subject_cn(),
        root_sha256: crypto.sha256(root.der()),
        sev_snp,
        tdx,
    })
}

impl GceEndorsement {
    /// The vCPU count whose endorsed MEASUREMENT `measurement` is (the one asked for, when
    /// `vcpus` is given).
    pub fn snp(
        &self,
        measurement: &[u8; 48],
        vcpus: Option<u32>,
    ) -> Result<u32, GceEndorsementError> {
        let snp = self.sev_snp.as_ref().ok_or(GceEndorsementError::NoSevSnp)?;
        snp.measurements
            .iter()
            .find(|(n, m)| *m == measurement && vcpus.is_none_or(|want| want == **n))
            .map(|(n, _)| *n)
            .ok_or_else(|| GceEndorsementError::MeasurementNotEndorsed {
                measurement: hex::encode(measurement),
                vcpus,
            })
    }

    /// The endorsed TDX configuration whose MRTD `mrtd` is.
    pub fn tdx(&self, mrtd: &[u8; 48]) -> Result<&GceTdxMeasurement, GceEndorsementError> {
        let tdx = self.tdx.as_ref().ok_or(GceEndorsementError::NoTdx)?;
        tdx.measurements
            .iter()
            .find(|m| &m.mrtd == mrtd)
            .ok_or_else(|| GceEndorsementError::MrtdNotEndorsed(hex::encode(mrtd)))
    }

    /// Whether `sha384` is the endorsed firmware's digest.
    pub fn firmware(&self, sha384: &[u8; 48]) -> Result<(), GceEndorsementError> {
        match &self.firmware_sha384 {
            Some(want) if want == sha384 => Ok(()),
            want => Err(GceEndorsementError::FirmwareDigest {
                want: want.map(hex::encode).unwrap_or_else(|| "(none)".into()),
                got: hex::encode(sha384),
            }),
        }
    }
}

//! SEV-SNP and TDX through the kernel's configfs-tsm report interface
//! (`Documentation/ABI/testing/configfs-tsm`, Linux >= 6.7).
//!
//! One request: `mkdir <root>/<entry>`; read `generation`; write the 64-byte
//! REPORT_DATA to `inblob`; read `outblob` (SNP: the raw report; TDX: a quote
//! from the host's quoting service), `auxblob` (SNP: the certificate table) and
//! `provider` (`sev_guest` / `tdx_guest`); read `generation` again: it must have
//! moved by exactly one, or another process wrote to the entry meanwhile and the
//! blobs may be for its REPORT_DATA; `rmdir` the entry. File access goes through
//! [`TsmFs`] so tests can stand in for the kernel on a real directory tree.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use attestation_verifier::bundle::CpuEvidence;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::receipt::TeeKind;

use crate::collateral::tdx::TdxCollateralSource;
use crate::collateral::vcek::VcekSource;
use crate::evidence::certtable::{SnpCertificates, parse_cert_table};
use crate::evidence::{EvidenceError, EvidenceSource};

/// Where the kernel mounts the report interface.
pub const TSM_REPORT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// How many times a request is retried after a concurrent writer was detected.
const RACE_RETRIES: usize = 3;

/// The file operations a request needs (the kernel's configfs in production).
pub trait TsmFs: Send + Sync {
    /// Creates a report entry.
    fn mkdir(&self, path: &Path) -> std::io::Result<()>;
    /// Removes a report entry.
    fn rmdir(&self, path: &Path) -> std::io::Result<()>;
    /// Writes an attribute.
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()>;
    /// Reads an attribute.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

impl TsmFs for StdFs {
    fn mkdir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir(path)
    }
    fn rmdir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        std::fs::write(path, data)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// Which TEE the kernel's TSM provider is.
fn provider_tee(provider: &[u8]) -> Result<TeeKind, EvidenceError> {
    let p = String::from_utf8_lossy(provider);
    match p.trim() {
        "sev_guest" => Ok(TeeKind::SevSnp),
        "tdx_guest" => Ok(TeeKind::Tdx),
        other => Err(EvidenceError::TsmProvider(other.into())),
    }
}

/// What one request returned.
#[derive(Debug)]
struct TsmReport {
    tee: TeeKind,
    outblob: Vec<u8>,
    auxblob: Option<Vec<u8>>,
}

/// A configfs-tsm evidence source.
pub struct TsmSource {
    fs: Box<dyn TsmFs>,
    root: PathBuf,
    tee: TeeKind,
    prefix: String,
    counter: AtomicU64,
    tdx_collateral: Option<Box<dyn TdxCollateralSource>>,
    vcek: Option<Arc<dyn VcekSource>>,
}

/// Removes the entry when dropped, so no path leaves it behind.
struct Entry<'a> {
    fs: &'a dyn TsmFs,
    path: PathBuf,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.fs.rmdir(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove configfs-tsm entry");
        }
    }
}

impl TsmSource {
    /// The kernel's interface at [`TSM_REPORT_ROOT`].
    pub fn open() -> Result<Self, EvidenceError> {
        Self::with_fs(Box::new(StdFs), PathBuf::from(TSM_REPORT_ROOT))
    }

    /// A source over `fs` rooted at `root`; asks the kernel which provider it is
    /// (one empty entry, created and removed).
    pub fn with_fs(fs: Box<dyn TsmFs>, root: PathBuf) -> Result<Self, EvidenceError> {
        let mut s = Self {
            fs,
            root,
            tee: TeeKind::None,
            prefix: format!("sigil-{}", std::process::id()),
            counter: AtomicU64::new(0),
            tdx_collateral: None,
            vcek: None,
        };
        let entry = s.entry()?;
        let provider = s.read(&entry.path, "provider")?;
        drop(entry);
        s.tee = provider_tee(&provider)?;
        Ok(s)
    }

    /// Adds DCAP collateral to TDX quotes (without it, TDX bundles cannot be
    /// verified offline).
    pub fn with_tdx_collateral(mut self, source: Box<dyn TdxCollateralSource>) -> Self {
        self.tdx_collateral = Some(source);
        self
    }

    /// Where the VCEK comes from when the kernel returns no SEV-SNP certificates (AMD KDS
    /// or a file).
    pub fn with_vcek_source(mut self, source: Option<Arc<dyn VcekSource>>) -> Self {
        self.vcek = source;
        self
    }

    fn entry(&self) -> Result<Entry<'_>, EvidenceError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join(format!("{}-{n}", self.prefix));
        self.fs.mkdir(&path).map_err(|source| EvidenceError::Tsm {
            op: "mkdir",
            path: path.clone(),
            source,
        })?;
        Ok(Entry {
            fs: self.fs.as_ref(),
            path,
        })
    }

    fn read(&self, dir: &Path, attr: &'static str) -> Result<Vec<u8>, EvidenceError> {
        let path = dir.join(attr);
        self.fs.read(&path).map_err(|source| EvidenceError::Tsm {
            op: "read",
            path,
            source,
        })
    }

    fn generation(&self, dir: &Path) -> Result<u64, EvidenceError> {
        let g = self.read(dir, "generation")?;
        String::from_utf8_lossy(&g)
            .trim()
            .parse()
            .map_err(|_| EvidenceError::TsmAttribute {
                attribute: "generation",
                detail: String::from_utf8_lossy(&g).into_owned(),
            })
    }

    fn request(&self, report_data: &[u8; 64]) -> Result<TsmReport, EvidenceError> {
        let entry = self.entry()?;
        let dir = &entry.path;
        let before = self.generation(dir)?;
        let inblob = dir.join("inblob");
        self.fs
            .write(&inblob, report_data)
            .map_err(|source| EvidenceError::Tsm {
                op: "write",
                path: inblob,
                source,
            })?;
        let outblob = self.read(dir, "outblob")?;
        let auxblob = match self.read(dir, "auxblob") {
            Ok(a) if !a.is_empty() => Some(a),
            Ok(_) => None,
            // TDX has no auxblob; older kernels lack the attribute.
            Err(EvidenceError::Tsm { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        let tee = provider_tee(&self.read(dir, "provider")?)?;
        let after = self.generation(dir)?;
        let expected = before.saturating_add(1);
        if after != expected {
            return Err(EvidenceError::TsmRace {
                expected,
                found: after,
            });
        }
        Ok(TsmReport {
            tee,
            outblob,
            auxblob,
        })
    }
}

impl EvidenceSource for TsmSource {
    fn tee(&self) -> TeeKind {
        self.tee
    }

    fn name(&self) -> &'static str {
        "tsm"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, EvidenceError> {
        let mut attempt = 0;
        let r = loop {
            match self.request(report_data) {
                Err(EvidenceError::TsmRace { expected, found }) if attempt < RACE_RETRIES => {
                    tracing::warn!(expected, found, "configfs-tsm entry raced; retrying");
                    attempt = attempt.saturating_add(1);
                }
                other => break other?,
            }
        };
        if r.tee != self.tee {
            return Err(EvidenceError::TsmProvider(r.tee.name().into()));
        }
        match r.tee {
            TeeKind::SevSnp => {
                let certs = match &r.auxblob {
                    Some(table) => parse_cert_table(table)?,
                    None => SnpCertificates::default(),
                };
                super::snp_evidence(r.outblob, certs, report_data, self.vcek.as_deref())
            }
            TeeKind::Tdx => {
                let q = parse_tdx_quote(&r.outblob).map_err(|e| EvidenceError::Unusable {
                    tee: TeeKind::Tdx,
                    detail: e.to_string(),
                })?;
                if &q.body.report_data != report_data {
                    return Err(EvidenceError::Unusable {
                        tee: TeeKind::Tdx,
                        detail: "the quote does not carry the requested REPORTDATA".into(),
                    });
                }
                let collateral_json = match &self.tdx_collateral {
                    Some(c) => Some(c.collateral(&r.outblob)?),
                    None => None,
                };
                Ok(CpuEvidence::Tdx {
                    quote: r.outblob,
                    collateral_json,
                })
            }
            other => Err(EvidenceError::TsmProvider(other.name().into())),
        }
    }
}

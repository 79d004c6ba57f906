//! TPM 2.0 commands marshaled by hand (TPM 2.0 Library, Part 3) over a
//! [`TpmTransport`]: the NV, capability, quote and PCR commands the Azure vTPM
//! backend (`super::backend::azure_vtpm`) needs, with TPM response codes as
//! typed errors.
//!
//! Why by hand: the `tss-esapi` crate needs the C `tpm2-tss` libraries at build
//! and run time, and five fixed commands do not justify that dependency in the
//! agent. The device is plain file I/O on `/dev/tpmrm0` (the kernel's resource
//! manager: one command written, one response read).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The kernel's TPM device with its resource manager.
pub const TPM_DEVICE: &str = "/dev/tpmrm0";

/// Largest TPM response read (TPM 2.0 devices answer at most 4 KiB).
pub(crate) const MAX_RESPONSE: usize = 8192;
/// How often a command that got a retry warning is sent again.
pub(crate) const TPM_RETRIES: usize = 4;

// TPM 2.0 constants (Part 2: Structures).
pub(crate) const TPM_ST_NO_SESSIONS: u16 = 0x8001;
pub(crate) const TPM_ST_SESSIONS: u16 = 0x8002;
pub(crate) const TPM_CC_NV_DEFINE_SPACE: u32 = 0x0000_012A;
pub(crate) const TPM_CC_NV_WRITE: u32 = 0x0000_0137;
pub(crate) const TPM_CC_NV_READ: u32 = 0x0000_014E;
pub(crate) const TPM_CC_NV_READ_PUBLIC: u32 = 0x0000_0169;
pub(crate) const TPM_CC_GET_CAPABILITY: u32 = 0x0000_017A;
pub(crate) const TPM_CC_QUOTE: u32 = 0x0000_0158;
pub(crate) const TPM_CC_PCR_READ: u32 = 0x0000_017E;
pub(crate) const TPM_ALG_RSASSA: u16 = 0x0014;
/// The most PCRs a PC-client TPM has (PCR 0 to 23).
pub const PCR_COUNT: u8 = 24;
pub(crate) const TPM_RH_OWNER: u32 = 0x4000_0001;
pub(crate) const TPM_RS_PW: u32 = 0x4000_0009;
pub(crate) const TPM_CAP_TPM_PROPERTIES: u32 = 0x0000_0006;
pub(crate) const TPM_PT_NV_BUFFER_MAX: u32 = 0x0000_012C;
pub(crate) const TPM_ALG_SHA256: u16 = 0x000B;
/// `TPMA_NV_OWNERWRITE | TPMA_NV_AUTHWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD`
/// (what `tpm2_nvdefine -C o` sets), for the user-data index.
pub(crate) const USER_DATA_NV_ATTRIBUTES: u32 = 0x0006_0006;

/// A TPM response code (`TPM_RC`), decoded as TPM 2.0 Part 2 section 6.6 lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseCode(pub u32);

/// What a response code refers to (format-one codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcSubject {
    /// A handle of the command (1-based).
    Handle(u8),
    /// A parameter of the command (1-based).
    Parameter(u8),
    /// A session of the command (1-based).
    Session(u8),
    /// Nothing in particular.
    None,
}

impl ResponseCode {
    /// The error number without its subject: `0x080 + n` for format-one codes,
    /// `0x100 + n` (errors) or `0x900 + n` (warnings) for format-zero codes.
    pub const fn base(self) -> u32 {
        let rc = self.0;
        if rc & 0xFFFF_F000 != 0 {
            // A software layer's code (resource manager, TSS): kept whole.
            rc
        } else if rc & 0x080 != 0 {
            rc & 0x0BF
        } else if rc & 0x100 != 0 && rc & 0x400 == 0 {
            rc & 0x97F
        } else {
            // TPM 1.2 or vendor-defined: kept whole.
            rc
        }
    }

    /// The handle, parameter or session a format-one code refers to.
    pub const fn subject(self) -> RcSubject {
        let rc = self.0;
        if rc & 0xFFFF_F000 != 0 || rc & 0x080 == 0 {
            return RcSubject::None;
        }
        let n = ((rc >> 8) & 0xF) as u8;
        if rc & 0x040 != 0 {
            RcSubject::Parameter(n)
        } else if n == 0 {
            RcSubject::None
        } else if n & 0x8 != 0 {
            RcSubject::Session(n & 0x7)
        } else {
            RcSubject::Handle(n)
        }
    }

    /// A warning the TPM asks to be retried after (`TPM_RC_RETRY`,
    /// `TPM_RC_YIELDED`, `TPM_RC_TESTING`).
    pub const fn is_retry(self) -> bool {
        matches!(self.base(), 0x922 | 0x908 | 0x90A)
    }

    /// `TPM_RC_HANDLE`: the handle (for NV commands: the index) does not exist.
    pub const fn is_handle(self) -> bool {
        self.base() == 0x08B
    }

    /// The code's name in the TPM specification, when it is a common one.
    pub const fn name(self) -> &'static str {
        match self.base() {
            0x000 => "TPM_RC_SUCCESS",
            0x081 => "TPM_RC_ASYMMETRIC",
            0x082 => "TPM_RC_ATTRIBUTES",
            0x083 => "TPM_RC_HASH",
            0x084 => "TPM_RC_VALUE",
            0x085 => "TPM_RC_HIERARCHY",
            0x08B => "TPM_RC_HANDLE",
            0x08E => "TPM_RC_AUTH_FAIL",
            0x095 => "TPM_RC_SIZE",
            0x097 => "TPM_RC_TAG",
            0x09A => "TPM_RC_INSUFFICIENT",
            0x0A2 => "TPM_RC_BAD_AUTH",
            0x100 => "TPM_RC_INITIALIZE",
            0x101 => "TPM_RC_FAILURE",
            0x124 => "TPM_RC_AUTH_TYPE",
            0x125 => "TPM_RC_AUTH_MISSING",
            0x126 => "TPM_RC_POLICY",
            0x142 => "TPM_RC_COMMAND_SIZE",
            0x143 => "TPM_RC_COMMAND_CODE",
            0x144 => "TPM_RC_AUTHSIZE",
            0x145 => "TPM_RC_AUTH_CONTEXT",
            0x146 => "TPM_RC_NV_RANGE",
            0x147 => "TPM_RC_NV_SIZE",
            0x148 => "TPM_RC_NV_LOCKED",
            0x149 => "TPM_RC_NV_AUTHORIZATION",
            0x14A => "TPM_RC_NV_UNINITIALIZED",
            0x14B => "TPM_RC_NV_SPACE",
            0x14C => "TPM_RC_NV_DEFINED",
            0x908 => "TPM_RC_YIELDED",
            0x909 => "TPM_RC_CANCELED",
            0x90A => "TPM_RC_TESTING",
            0x920 => "TPM_RC_NV_RATE",
            0x921 => "TPM_RC_LOCKOUT",
            0x922 => "TPM_RC_RETRY",
            0x923 => "TPM_RC_NV_UNAVAILABLE",
            _ => "TPM_RC (unnamed)",
        }
    }
}

impl std::fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:#x})", self.name(), self.0)?;
        match self.subject() {
            RcSubject::Handle(n) => write!(f, " for handle {n}"),
            RcSubject::Parameter(n) => write!(f, " for parameter {n}"),
            RcSubject::Session(n) => write!(f, " for session {n}"),
            RcSubject::None => Ok(()),
        }
    }
}

/// Why a TPM command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TpmError {
    /// The device could not be opened, written or read.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The device.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The TPM answered with an error.
    #[error("{command}: {code}")]
    Response {
        /// The command.
        command: &'static str,
        /// The response code.
        code: ResponseCode,
    },
    /// The response is not what the command returns.
    #[error("{command}: malformed response: {detail}")]
    Malformed {
        /// The command.
        command: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The NV index does not exist.
    #[error("NV index {index:#010x} is not defined")]
    NvIndexUndefined {
        /// The index.
        index: u32,
    },
    /// The NV index is smaller than what must be written.
    #[error("NV index {index:#010x} holds {size} bytes, {needed} are needed")]
    NvIndexSize {
        /// The index.
        index: u32,
        /// Its size.
        size: u16,
        /// What is needed.
        needed: usize,
    },
}

/// The one hardware call: send a TPM command, get its response.
pub trait TpmTransport: Send + Sync {
    /// Sends one marshaled command and returns the whole response.
    fn transact(&self, command: &[u8]) -> Result<Vec<u8>, TpmError>;
}

/// A TPM character device (`/dev/tpmrm0`).
pub struct TpmDevice {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl TpmDevice {
    /// Opens the device for reading and writing.
    pub fn open(path: &Path) -> Result<Self, TpmError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| TpmError::Io {
                op: "opening",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }
}

impl TpmTransport for TpmDevice {
    fn transact(&self, command: &[u8]) -> Result<Vec<u8>, TpmError> {
        let io = |op, source| TpmError::Io {
            op,
            path: self.path.clone(),
            source,
        };
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The driver takes a whole command per write and returns a whole
        // response per read.
        file.write_all(command).map_err(|e| io("writing", e))?;
        let mut buf = vec![0u8; MAX_RESPONSE];
        let n = file.read(&mut buf).map_err(|e| io("reading", e))?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// A command under construction (big-endian, as the TPM wants it).
pub(crate) struct Command {
    buf: Vec<u8>,
}

impl Command {
    fn new(tag: u16, code: u32) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&tag.to_be_bytes());
        buf.extend_from_slice(&[0; 4]); // size, set by `finish`
        buf.extend_from_slice(&code.to_be_bytes());
        Self { buf }
    }

    fn u8(mut self, v: u8) -> Self {
        self.buf.push(v);
        self
    }

    fn u16(mut self, v: u16) -> Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn u32(mut self, v: u32) -> Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `TPM2B`: a 16-bit size and the bytes (callers keep them under 64 KiB).
    fn tpm2b(self, data: &[u8]) -> Self {
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        let mut c = self.u16(len);
        c.buf
            .extend_from_slice(data.get(..usize::from(len)).unwrap_or(data));
        c
    }

    /// The authorization area of one password session with an empty password
    /// (`TPM_RS_PW`, no nonce, no attributes, empty HMAC field).
    fn password_session(self) -> Self {
        self.u32(9) // authorizationSize: handle 4 + nonce 2 + attributes 1 + hmac 2
            .u32(TPM_RS_PW)
            .tpm2b(&[])
            .u8(0)
            .tpm2b(&[])
    }

    fn finish(mut self) -> Vec<u8> {
        let size = u32::try_from(self.buf.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        if let Some(s) = self.buf.get_mut(2..6) {
            s.copy_from_slice(&size);
        }
        self.buf
    }
}

/// A bounds-checked reader over a response's parameters.
pub(crate) struct Reader<'a> {
    command: &'static str,
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn malformed(&self, detail: impl Into<String>) -> TpmError {
        TpmError::Malformed {
            command: self.command,
            detail: detail.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], TpmError> {
        if self.data.len() < n {
            return Err(self.malformed(format!("truncated at {what}")));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, TpmError> {
        Ok(self.take(1, what)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self, what: &str) -> Result<u16, TpmError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes(b.try_into().unwrap_or_default()))
    }

    fn u32(&mut self, what: &str) -> Result<u32, TpmError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes(b.try_into().unwrap_or_default()))
    }

    fn tpm2b(&mut self, what: &str) -> Result<&'a [u8], TpmError> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }

    fn end(&self) -> Result<(), TpmError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(self.malformed(format!("{} unexpected trailing bytes", self.data.len())))
        }
    }
}

/// What `TPM2_NV_ReadPublic` says about an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NvPublic {
    /// The index.
    pub index: u32,
    /// Its name algorithm.
    pub name_alg: u16,
    /// `TPMA_NV` attributes.
    pub attributes: u32,
    /// Its size, bytes.
    pub data_size: u16,
}

/// A `TPML_PCR_SELECTION` of one SHA-256 bank: `count 1, hash, sizeofSelect 3, bitmap`.
pub(crate) fn sha256_selection(pcrs: &[u8]) -> Vec<u8> {
    let mut bitmap = [0u8; 3];
    for &p in pcrs {
        if let Some(b) = bitmap.get_mut(usize::from(p / 8)) {
            *b |= 1u8 << (p % 8);
        }
    }
    let mut out = Vec::with_capacity(10);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    out.push(3);
    out.extend_from_slice(&bitmap);
    out
}

/// What `TPM2_Quote` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmQuoteResponse {
    /// `TPMS_ATTEST`, marshaled (the contents of `quoted`).
    pub attest: Vec<u8>,
    /// `TPMT_SIGNATURE`, marshaled.
    pub signature: Vec<u8>,
}

/// The TPM commands this backend needs, over a [`TpmTransport`].
pub struct Tpm {
    transport: Box<dyn TpmTransport>,
}

impl Tpm {
    /// Commands over `transport`.
    pub fn new(transport: Box<dyn TpmTransport>) -> Self {
        Self { transport }
    }

    /// Sends `command`, checks the response header and code, and returns the
    /// bytes after the header. Retry warnings are retried a few times.
    fn call(
        &self,
        name: &'static str,
        command: &[u8],
        sessions: bool,
    ) -> Result<Vec<u8>, TpmError> {
        let mut attempt = 0;
        loop {
            let resp = self.transport.transact(command)?;
            let mut r = Reader {
                command: name,
                data: &resp,
            };
            let tag = r.u16("tag")?;
            let size = r.u32("size")?;
            let rc = ResponseCode(r.u32("response code")?);
            if usize::try_from(size).ok() != Some(resp.len()) {
                return Err(r.malformed(format!(
                    "size field says {size} bytes, {} received",
                    resp.len()
                )));
            }
            if rc.0 != 0 {
                if rc.is_retry() && attempt < TPM_RETRIES {
                    attempt = attempt.saturating_add(1);
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                return Err(TpmError::Response {
                    command: name,
                    code: rc,
                });
            }
            let expected = if sessions {
                TPM_ST_SESSIONS
            } else {
                TPM_ST_NO_SESSIONS
            };
            if tag != expected {
                return Err(r.malformed(format!("tag {tag:#06x}, expected {expected:#06x}")));
            }
            return Ok(r.data.to_vec());
        }
    }

    /// Strips the `parameterSize` prefix and the one password session's
    /// response (nonce, attributes, empty HMAC) from a sessions response.
    fn session_parameters<'a>(name: &'static str, body: &'a [u8]) -> Result<Reader<'a>, TpmError> {
        let mut r = Reader {
            command: name,
            data: body,
        };
        let size = usize::try_from(r.u32("parameterSize")?).unwrap_or(usize::MAX);
        let params = r.take(size, "parameters")?;
        let _nonce = r.tpm2b("session nonce")?;
        let _attributes = r.u8("session attributes")?;
        let _hmac = r.tpm2b("session HMAC")?;
        r.end()?;
        Ok(Reader {
            command: name,
            data: params,
        })
    }

    /// `TPM2_NV_ReadPublic`; `Ok(None)` when the index is not defined.
    pub fn nv_read_public(&self, index: u32) -> Result<Option<NvPublic>, TpmError> {
        const NAME: &str = "TPM2_NV_ReadPublic";
        let cmd = Command::new(TPM_ST_NO_SESSIONS, TPM_CC_NV_READ_PUBLIC)
            .u32(index)
            .finish();
        let body = match self.call(NAME, &cmd, false) {
            Ok(b) => b,
            Err(TpmError::Response { code, .. }) if code.is_handle() => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut r = Reader {
            command: NAME,
            data: &body,
        };
        let public = r.tpm2b("nvPublic")?;
        let _name = r.tpm2b("nvName")?;
        r.end()?;
        let mut p = Reader {
            command: NAME,
            data: public,
        };
        let got = p.u32("nvIndex")?;
        let name_alg = p.u16("nameAlg")?;
        let attributes = p.u32("attributes")?;
        let _policy = p.tpm2b("authPolicy")?;
        let data_size = p.u16("dataSize")?;
        p.end()?;
        if got != index {
            return Err(p.malformed(format!("describes index {got:#010x}, not {index:#010x}")));
        }
        Ok(Some(NvPublic {
            index,
            name_alg,
            attributes,
            data_size,
        }))
    }

    /// `TPM2_GetCapability(TPM_PT_NV_BUFFER_MAX)`: the most bytes one NV read or
    /// write moves.
    pub fn nv_buffer_max(&self) -> Result<u16, TpmError> {
        const NAME: &str = "TPM2_GetCapability";
        let cmd = Command::new(TPM_ST_NO_SESSIONS, TPM_CC_GET_CAPABILITY)
            .u32(TPM_CAP_TPM_PROPERTIES)
            .u32(TPM_PT_NV_BUFFER_MAX)
            .u32(1)
            .finish();
        let body = self.call(NAME, &cmd, false)?;
        let mut r = Reader {
            command: NAME,
            data: &body,
        };
        let _more = r.u8("moreData")?;
        let cap = r.u32("capability")?;
        let count = r.u32("count")?;
        if cap != TPM_CAP_TPM_PROPERTIES || count == 0 {
            return Err(r.malformed(format!(
                "capability {cap:#x} with {count} properties, expected TPM_CAP_TPM_PROPERTIES with 1"
            )));
        }
        let property = r.u32("property")?;
        let value = r.u32("value")?;
        if property != TPM_PT_NV_BUFFER_MAX {
            return Err(r.malformed(format!(
                "property {property:#x} instead of TPM_PT_NV_BUFFER_MAX"
            )));
        }
        match u16::try_from(value) {
            Ok(v) if v > 0 => Ok(v),
            _ => Err(r.malformed(format!("TPM_PT_NV_BUFFER_MAX is {value}"))),
        }
    }

    /// `TPM2_NV_Read` of `size` bytes from `offset`, with owner authorization.
    fn nv_read_chunk(&self, index: u32, offset: u16, size: u16) -> Result<Vec<u8>, TpmError> {
        const NAME: &str = "TPM2_NV_Read";
        let cmd = Command::new(TPM_ST_SESSIONS, TPM_CC_NV_READ)
            .u32(TPM_RH_OWNER)
            .u32(index)
            .password_session()
            .u16(size)
            .u16(offset)
            .finish();
        let body = self.call(NAME, &cmd, true)?;
        let mut p = Self::session_parameters(NAME, &body)?;
        let data = p.tpm2b("data")?;
        p.end()?;
        if data.len() != usize::from(size) {
            return Err(p.malformed(format!("{} bytes returned, {size} asked", data.len())));
        }
        Ok(data.to_vec())
    }

    /// The whole content of an NV index, read in chunks of `TPM_PT_NV_BUFFER_MAX`.
    pub fn nv_read(&self, index: u32) -> Result<Vec<u8>, TpmError> {
        let public = self
            .nv_read_public(index)?
            .ok_or(TpmError::NvIndexUndefined { index })?;
        let max = self.nv_buffer_max()?;
        let total = public.data_size;
        let mut out = Vec::with_capacity(usize::from(total));
        let mut offset: u16 = 0;
        while offset < total {
            let n = max.min(total.saturating_sub(offset));
            out.extend(self.nv_read_chunk(index, offset, n)?);
            offset = offset.saturating_add(n);
        }
        Ok(out)
    }

    /// `TPM2_NV_Write` of `data` at offset 0, with owner authorization.
    pub fn nv_write(&self, index: u32, data: &[u8]) -> Result<(), TpmError> {
        const NAME: &str = "TPM2_NV_Write";
        let cmd = Command::new(TPM_ST_SESSIONS, TPM_CC_NV_WRITE)
            .u32(TPM_RH_OWNER)
            .u32(index)
            .password_session()
            .tpm2b(data)
            .u16(0)
            .finish();
        let body = self.call(NAME, &cmd, true)?;
        Self::session_parameters(NAME, &body)?.end()
    }

    /// `TPM2_Quote` with the key at persistent handle `key` (empty password),
    /// over the SHA-256 PCRs `pcrs` (each below 24), with `qualifying` data
    /// (at most 64 bytes) and the RSASSA / SHA-256 scheme.
    pub fn quote(
        &self,
        key: u32,
        qualifying: &[u8],
        pcrs: &[u8],
    ) -> Result<TpmQuoteResponse, TpmError> {
        const NAME: &str = "TPM2_Quote";
        let mut cmd = Command::new(TPM_ST_SESSIONS, TPM_CC_QUOTE)
            .u32(key)
            .password_session()
            .tpm2b(qualifying)
            .u16(TPM_ALG_RSASSA)
            .u16(TPM_ALG_SHA256);
        cmd.buf.extend_from_slice(&sha256_selection(pcrs));
        let body = self.call(NAME, &cmd.finish(), true)?;
        let mut p = Self::session_parameters(NAME, &body)?;
        let attest = p.tpm2b("quoted")?.to_vec();
        // The rest is the TPMT_SIGNATURE, whose layout depends on its scheme:
        // the verifier parses it (and refuses other schemes).
        let signature = p.take(p.data.len(), "signature")?.to_vec();
        if signature.len() < 2 {
            return Err(p.malformed("no signature"));
        }
        Ok(TpmQuoteResponse { attest, signature })
    }

    /// `TPM2_PCR_Read` of the SHA-256 PCRs `pcrs` (each below 24), in
    /// increasing index order. A TPM returns at most 8 values per answer: the
    /// command is repeated for those not yet returned. The values come from
    /// several answers, so a caller compares them with what a quote signed.
    pub fn pcr_read(&self, pcrs: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, TpmError> {
        const NAME: &str = "TPM2_PCR_Read";
        let mut wanted: Vec<u8> = pcrs.iter().copied().filter(|&p| p < PCR_COUNT).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out: Vec<(u8, Vec<u8>)> = Vec::with_capacity(wanted.len());
        while !wanted.is_empty() {
            let mut cmd = Command::new(TPM_ST_NO_SESSIONS, TPM_CC_PCR_READ);
            cmd.buf.extend_from_slice(&sha256_selection(&wanted));
            let body = self.call(NAME, &cmd.finish(), false)?;
            let mut r = Reader {
                command: NAME,
                data: &body,
            };
            let _update_counter = r.u32("pcrUpdateCounter")?;
            let count = r.u32("pcrSelectionOut.count")?;
            let mut returned = Vec::new();
            for _ in 0..count {
                let hash = r.u16("pcrSelectionOut.hash")?;
                let size = r.u8("pcrSelectionOut.sizeofSelect")?;
                let select = r.take(usize::from(size), "pcrSelectionOut.pcrSelect")?;
                for (i, byte) in (0u8..).zip(select) {
                    for bit in 0u8..8 {
                        if byte & (1u8 << bit) != 0 {
                            let pcr = i.saturating_mul(8).saturating_add(bit);
                            if hash != TPM_ALG_SHA256 || !wanted.contains(&pcr) {
                                return Err(r.malformed(format!(
                                    "returned PCR {pcr} of bank {hash:#06x}, not asked for"
                                )));
                            }
                            returned.push(pcr);
                        }
                    }
                }
            }
            let n = r.u32("pcrValues.count")?;
            if usize::try_from(n).ok() != Some(returned.len()) {
                return Err(r.malformed(format!("{n} values for {} selected PCRs", returned.len())));
            }
            for &pcr in &returned {
                let v = r.tpm2b("pcrValues.digests")?;
                if v.len() != 32 {
                    return Err(r.malformed(format!("PCR {pcr} value is {} bytes", v.len())));
                }
                out.push((pcr, v.to_vec()));
            }
            r.end()?;
            if returned.is_empty() {
                return Err(r.malformed(format!("no value returned for PCRs {wanted:?}")));
            }
            wanted.retain(|p| !returned.contains(p));
        }
        out.sort_by_key(|(p, _)| *p);
        Ok(out)
    }

    /// `TPM2_NV_DefineSpace` of an owner-readable and -writable index of `size`
    /// bytes without a password or policy.
    pub fn nv_define(&self, index: u32, size: u16) -> Result<(), TpmError> {
        const NAME: &str = "TPM2_NV_DefineSpace";
        let mut public = Vec::with_capacity(14);
        public.extend_from_slice(&index.to_be_bytes());
        public.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        public.extend_from_slice(&USER_DATA_NV_ATTRIBUTES.to_be_bytes());
        public.extend_from_slice(&0u16.to_be_bytes()); // authPolicy: empty
        public.extend_from_slice(&size.to_be_bytes());
        let cmd = Command::new(TPM_ST_SESSIONS, TPM_CC_NV_DEFINE_SPACE)
            .u32(TPM_RH_OWNER)
            .password_session()
            .tpm2b(&[]) // auth: empty
            .tpm2b(&public)
            .finish();
        let body = self.call(NAME, &cmd, true)?;
        Self::session_parameters(NAME, &body)?.end()
    }
}

#[cfg(test)]
mod tests;

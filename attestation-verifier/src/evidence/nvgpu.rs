//! NVIDIA confidential-GPU attestation reports (H100/H200 "Hopper", B100/B200
//! "Blackwell"): the SPDM 1.1 `GET_MEASUREMENTS` request the driver sent with
//! the caller's nonce, followed by the GPU's signed `MEASUREMENTS` response.
//!
//! Layout (DMTF DSP0274 1.1, all integers little-endian):
//!
//! ```text
//! request (37 bytes)
//!   0  SPDMVersion (0x11)      1  RequestResponseCode (0xE0 GET_MEASUREMENTS)
//!   2  Param1 (bit 0: signature requested)   3  Param2 (0xFF: all measurements)
//!   4  Nonce (32)              36 SlotIDParam
//! response
//!   0  SPDMVersion             1  RequestResponseCode (0x60 MEASUREMENTS)
//!   2  Param1                  3  Param2 (bits 0..3: slot id)
//!   4  NumberOfBlocks          5  MeasurementRecordLength (3 bytes)
//!   8  MeasurementRecord: NumberOfBlocks measurement blocks
//!        Index (1) | MeasurementSpecification (1, bit 0 = DMTF) | MeasurementSize (2)
//!        | DMTF measurement: ValueType (1) | ValueSize (2) | Value
//!   .. Nonce (32, the responder's)   OpaqueLength (2)   OpaqueData (OpaqueLength)
//!   .. Signature (96: ECDSA P-384 r || s)
//! ```
//!
//! NVIDIA fills OpaqueData with type-length-value fields (type and length are
//! 16-bit): driver and VBIOS versions, the firmware id (FWID), project, SKUs,
//! per-index measurement counts, NVDEC and protected-PCIe status, the feature
//! flag that tells single-GPU, multi-GPU and protected-PCIe modes apart, ...
//!
//! The signature is located by the structure, not by assuming it ends the
//! buffer: bytes after it are not signed. Some published evidence carries zero
//! padding there, which is accepted (and counted); anything else is refused.
//! The parser is total: every length is checked and it never panics.

use alloc::string::String;
use alloc::vec::Vec;

use super::Bytes;

/// Length of the SPDM 1.1 `GET_MEASUREMENTS` request that precedes the response.
pub const REQUEST_LEN: usize = 37;
/// Length of the response's ECDSA P-384 signature (`r || s`).
pub const SIGNATURE_LEN: usize = 96;
/// SPDM version 1.1, the only version whose signing rule (plain ECDSA over
/// request || response) this parser's output is verified under.
pub const SPDM_VERSION_11: u8 = 0x11;
/// `GET_MEASUREMENTS` request code.
pub const GET_MEASUREMENTS: u8 = 0xE0;
/// `MEASUREMENTS` response code.
pub const MEASUREMENTS: u8 = 0x60;
/// Most zero bytes accepted after the signature.
pub const MAX_PADDING: usize = 64;

/// NVIDIA's opaque-data field ids.
pub mod field {
    /// Certificate issuer name.
    pub const CERT_ISSUER_NAME: u16 = 1;
    /// Certificate authority key identifier.
    pub const CERT_AUTHORITY_KEY_IDENTIFIER: u16 = 2;
    /// Driver version, NUL-terminated ASCII.
    pub const DRIVER_VERSION: u16 = 3;
    /// GPU info (8 bytes).
    pub const GPU_INFO: u16 = 4;
    /// SKU.
    pub const SKU: u16 = 5;
    /// VBIOS version (8 bytes, see `format_vbios_version`).
    pub const VBIOS_VERSION: u16 = 6;
    /// Manufacturer id.
    pub const MANUFACTURER_ID: u16 = 7;
    /// Tamper detection.
    pub const TAMPER_DETECTION: u16 = 8;
    /// SMC.
    pub const SMC: u16 = 9;
    /// VPR.
    pub const VPR: u16 = 10;
    /// NVDEC0 status (0x55 = disabled: measurement index 35 is then not appraised).
    pub const NVDEC0_STATUS: u16 = 11;
    /// Measurement counts, one little-endian u32 per measurement index.
    pub const MSRSCNT: u16 = 12;
    /// CPR info.
    pub const CPRINFO: u16 = 13;
    /// Board id.
    pub const BOARD_ID: u16 = 14;
    /// Chip SKU, NUL-terminated ASCII.
    pub const CHIP_SKU: u16 = 15;
    /// Chip SKU modifier.
    pub const CHIP_SKU_MOD: u16 = 16;
    /// Project, NUL-terminated ASCII.
    pub const PROJECT: u16 = 17;
    /// Project SKU, NUL-terminated ASCII.
    pub const PROJECT_SKU: u16 = 18;
    /// Project SKU modifier.
    pub const PROJECT_SKU_MOD: u16 = 19;
    /// Firmware id: SHA-384 that the device certificate's DICE extension also carries.
    pub const FWID: u16 = 20;
    /// Protected-PCIe status.
    pub const PROTECTED_PCIE_STATUS: u16 = 21;
    /// NVSwitch PDIs.
    pub const SWITCH_PDI: u16 = 22;
    /// Floorswept ports.
    pub const FLOORSWEPT_PORTS: u16 = 23;
    /// Position id.
    pub const POSITION_ID: u16 = 24;
    /// Lock-switch status.
    pub const LOCK_SWITCH_STATUS: u16 = 25;
    /// GPU link connections.
    pub const GPU_LINK_CONN: u16 = 32;
    /// System enable status.
    pub const SYS_ENABLE_STATUS: u16 = 33;
    /// Opaque-data format version.
    pub const OPAQUE_DATA_VERSION: u16 = 34;
    /// Chip info.
    pub const CHIP_INFO: u16 = 35;
    /// Feature flag: 0 single-GPU passthrough, 1 multi-GPU passthrough, 2 protected PCIe.
    pub const FEATURE_FLAG: u16 = 36;
}

/// The NVDEC0 status value meaning "disabled".
pub const NVDEC_DISABLED: u32 = 0x55;

/// Why GPU evidence could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NvGpuParseError {
    /// The evidence ends before a field.
    #[error(
        "GPU report truncated: {field} needs {needed} bytes at offset {offset}, {available} available"
    )]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Its offset in the evidence.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The SPDM version is not 1.1.
    #[error("{message} has SPDM version {version:#04x}; only 1.1 (0x11) is supported")]
    UnsupportedVersion {
        /// Request or response.
        message: &'static str,
        /// The version byte.
        version: u8,
    },
    /// Request and response disagree on the SPDM version.
    #[error("request is SPDM {request:#04x} but the response is {response:#04x}")]
    VersionMismatch {
        /// Request version.
        request: u8,
        /// Response version.
        response: u8,
    },
    /// A message has the wrong request/response code.
    #[error("{message} code is {found:#04x}, expected {expected:#04x}")]
    WrongCode {
        /// Request or response.
        message: &'static str,
        /// Expected code.
        expected: u8,
        /// Found code.
        found: u8,
    },
    /// The request did not ask for a signed response.
    #[error("GET_MEASUREMENTS request does not ask for a signature (param1 {param1:#04x})")]
    SignatureNotRequested {
        /// The request's Param1.
        param1: u8,
    },
    /// The response carries no measurement block.
    #[error("MEASUREMENTS response has no measurement block")]
    NoMeasurements,
    /// A measurement block is not in DMTF format.
    #[error("measurement block {index} has specification {specification:#04x}, not DMTF (0x01)")]
    NotDmtf {
        /// The block's index.
        index: u8,
        /// Its MeasurementSpecification byte.
        specification: u8,
    },
    /// A measurement block's sizes are inconsistent.
    #[error(
        "measurement block {index}: size {block_size} does not hold a DMTF value of {value_size} bytes"
    )]
    BlockSize {
        /// The block's index.
        index: u8,
        /// MeasurementSize.
        block_size: usize,
        /// DMTFSpecMeasurementValueSize.
        value_size: usize,
    },
    /// Two measurement blocks share an index.
    #[error("measurement index {0} appears twice")]
    DuplicateIndex(u8),
    /// The blocks do not fill the measurement record exactly.
    #[error("measurement record is {declared} bytes but its {blocks} blocks take {used}")]
    RecordLength {
        /// MeasurementRecordLength.
        declared: usize,
        /// Bytes used by NumberOfBlocks blocks.
        used: usize,
        /// NumberOfBlocks.
        blocks: u8,
    },
    /// An opaque-data field runs past the opaque data.
    #[error("opaque field {id} at offset {offset} overruns the opaque data")]
    OpaqueOverrun {
        /// The field id.
        id: u16,
        /// Its offset within the opaque data.
        offset: usize,
    },
    /// An opaque-data field appears twice.
    #[error("opaque field {0} appears twice")]
    DuplicateField(u16),
    /// A typed opaque-data field has a value of the wrong shape.
    #[error("opaque field {name} is malformed: {reason}")]
    BadField {
        /// The field's name.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Non-zero bytes follow the signature.
    #[error(
        "{count} unsigned bytes follow the signature (only up to 64 zero bytes of padding are accepted)"
    )]
    TrailingBytes {
        /// How many bytes follow the signature.
        count: usize,
    },
}

/// The `GET_MEASUREMENTS` request as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpdmRequest {
    /// SPDMVersion.
    pub version: u8,
    /// RequestResponseCode (0xE0).
    pub code: u8,
    /// Param1 (bit 0: signature requested).
    pub param1: u8,
    /// Param2 (measurement operation; 0xFF: all).
    pub param2: u8,
    /// The requester's nonce: the caller's freshness challenge.
    pub nonce: [u8; 32],
    /// SlotIDParam.
    pub slot_id: u8,
}

/// One DMTF measurement block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasurementBlock {
    /// Index (1-based; NVIDIA RIM index = SPDM index - 1).
    pub index: u8,
    /// DMTFSpecMeasurementValueType (bit 7: raw bit stream, else digest).
    pub value_type: u8,
    /// The measurement (a SHA-384 digest for NVIDIA GPUs).
    pub value: Vec<u8>,
}

/// One opaque-data field as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpaqueField {
    /// The field id (see [`field`]).
    pub id: u16,
    /// Its raw value.
    pub value: Vec<u8>,
}

/// The typed opaque-data fields a verifier and policy use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuFields {
    /// Driver version, e.g. `550.90.07`.
    pub driver_version: Option<String>,
    /// VBIOS version, e.g. `96.00.9f.00.01`.
    pub vbios_version: Option<String>,
    /// Firmware id (48 bytes).
    pub fwid: Option<Vec<u8>>,
    /// Project, e.g. `1010`.
    pub project: Option<String>,
    /// Project SKU, e.g. `0200`.
    pub project_sku: Option<String>,
    /// Chip SKU, e.g. `882`.
    pub chip_sku: Option<String>,
    /// Board id (raw).
    pub board_id: Option<Vec<u8>>,
    /// GPU info (raw).
    pub gpu_info: Option<Vec<u8>>,
    /// NVDEC0 status.
    pub nvdec0_status: Option<u32>,
    /// Protected-PCIe status.
    pub protected_pcie_status: Option<u32>,
    /// Feature flag (0 SPT, 1 MPT, 2 PPCIe); absent on older firmware.
    pub feature_flag: Option<u32>,
    /// Opaque-data format version (raw).
    pub opaque_data_version: Option<Vec<u8>>,
    /// Measurement counts per index.
    pub measurement_counts: Vec<u32>,
}

/// A parsed (not yet verified) GPU attestation report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvGpuReport {
    /// The request, with the caller's nonce.
    pub request: SpdmRequest,
    /// Response SPDMVersion.
    pub response_version: u8,
    /// Response Param1.
    pub response_param1: u8,
    /// Response Param2 (bits 0..3: slot id).
    pub response_param2: u8,
    /// MeasurementRecordLength.
    pub record_length: usize,
    /// The measurement blocks, in the order sent.
    pub blocks: Vec<MeasurementBlock>,
    /// The responder's nonce.
    pub response_nonce: [u8; 32],
    /// Every opaque-data field, in the order sent.
    pub opaque: Vec<OpaqueField>,
    /// The typed opaque-data fields.
    pub fields: GpuFields,
    /// Offset of the signature in the evidence (= length of the signed bytes).
    pub signature_offset: usize,
    /// The signature, `r || s`.
    pub signature: [u8; SIGNATURE_LEN],
    /// Zero bytes after the signature.
    pub padding: usize,
    /// request || response up to the signature: the signed message.
    pub signed: Vec<u8>,
}

impl NvGpuReport {
    /// The measurement with SPDM index `index`, if present.
    pub fn measurement(&self, index: u8) -> Option<&MeasurementBlock> {
        self.blocks.iter().find(|b| b.index == index)
    }

    /// Length of the whole evidence as parsed (signed bytes, signature, padding).
    pub fn evidence_len(&self) -> usize {
        self.signature_offset
            .saturating_add(SIGNATURE_LEN)
            .saturating_add(self.padding)
    }

    /// The id of the driver RIM in NVIDIA's RIM service, e.g.
    /// `NV_GPU_DRIVER_GH100_550.90.07`; `chip` comes from the device certificate.
    pub fn driver_rim_id(&self, chip: &str) -> Option<String> {
        let v = self.fields.driver_version.as_deref()?;
        Some(alloc::format!("NV_GPU_DRIVER_{chip}_{v}"))
    }

    /// The id of the VBIOS RIM in NVIDIA's RIM service, e.g.
    /// `NV_GPU_VBIOS_1010_0200_882_96009F0001` (project, project SKU, chip SKU,
    /// VBIOS version without dots, upper case).
    pub fn vbios_rim_id(&self) -> Option<String> {
        let f = &self.fields;
        let version: String = f
            .vbios_version
            .as_deref()?
            .chars()
            .filter(|c| *c != '.')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        Some(alloc::format!(
            "NV_GPU_VBIOS_{}_{}_{}_{version}",
            f.project.as_deref()?.to_ascii_uppercase(),
            f.project_sku.as_deref()?.to_ascii_uppercase(),
            f.chip_sku.as_deref()?.to_ascii_uppercase(),
        ))
    }

    /// The ids of the opaque fields, in the order sent.
    pub fn opaque_field_ids(&self) -> Vec<u16> {
        self.opaque.iter().map(|f| f.id).collect()
    }
}

struct Reader<'a> {
    bytes: Bytes<'a>,
    len: usize,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            bytes: Bytes::new(data),
            len: data.len(),
            pos: 0,
        }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], NvGpuParseError> {
        let out = self
            .bytes
            .slice(self.pos, n)
            .ok_or(NvGpuParseError::Truncated {
                field,
                offset: self.pos,
                needed: n,
                available: self.len.saturating_sub(self.pos),
            })?;
        self.pos = self.pos.saturating_add(n);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, NvGpuParseError> {
        self.take(field, 1)?
            .first()
            .copied()
            .ok_or(NvGpuParseError::Truncated {
                field,
                offset: self.pos,
                needed: 1,
                available: 0,
            })
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, NvGpuParseError> {
        self.array::<2>(field).map(u16::from_le_bytes)
    }

    fn u24(&mut self, field: &'static str) -> Result<usize, NvGpuParseError> {
        let [a, b, c] = self.array::<3>(field)?;
        let v = u32::from_le_bytes([a, b, c, 0]);
        Ok(usize::try_from(v).unwrap_or(usize::MAX))
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], NvGpuParseError> {
        let b = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes
            .slice(self.pos, self.len.saturating_sub(self.pos))
            .unwrap_or(&[])
    }
}

/// Parses GPU evidence: the 37-byte request followed by the signed response.
pub fn parse_nvgpu_report(data: &[u8]) -> Result<NvGpuReport, NvGpuParseError> {
    let mut r = Reader::new(data);
    // Request.
    let request = SpdmRequest {
        version: r.u8("request SPDMVersion")?,
        code: r.u8("request code")?,
        param1: r.u8("request Param1")?,
        param2: r.u8("request Param2")?,
        nonce: r.array("request nonce")?,
        slot_id: r.u8("request SlotIDParam")?,
    };
    if request.version != SPDM_VERSION_11 {
        return Err(NvGpuParseError::UnsupportedVersion {
            message: "GET_MEASUREMENTS request",
            version: request.version,
        });
    }
    if request.code != GET_MEASUREMENTS {
        return Err(NvGpuParseError::WrongCode {
            message: "request",
            expected: GET_MEASUREMENTS,
            found: request.code,
        });
    }
    if request.param1 & 1 == 0 {
        return Err(NvGpuParseError::SignatureNotRequested {
            param1: request.param1,
        });
    }
    // Response header.
    let response_version = r.u8("response SPDMVersion")?;
    if response_version != request.version {
        return Err(NvGpuParseError::VersionMismatch {
            request: request.version,
            response: response_version,
        });
    }
    let code = r.u8("response code")?;
    if code != MEASUREMENTS {
        return Err(NvGpuParseError::WrongCode {
            message: "response",
            expected: MEASUREMENTS,
            found: code,
        });
    }
    let response_param1 = r.u8("response Param1")?;
    let response_param2 = r.u8("response Param2")?;
    let number_of_blocks = r.u8("NumberOfBlocks")?;
    let record_length = r.u24("MeasurementRecordLength")?;
    let record = r.take("MeasurementRecord", record_length)?;
    let blocks = parse_record(record, number_of_blocks)?;
    let response_nonce = r.array("response nonce")?;
    let opaque_len = usize::from(r.u16("OpaqueLength")?);
    let opaque_bytes = r.take("OpaqueData", opaque_len)?;
    let opaque = parse_opaque(opaque_bytes)?;
    let fields = typed_fields(&opaque)?;
    let signature_offset = r.pos;
    let signature = r.array::<SIGNATURE_LEN>("signature")?;
    let rest = r.rest();
    if rest.len() > MAX_PADDING || rest.iter().any(|b| *b != 0) {
        return Err(NvGpuParseError::TrailingBytes { count: rest.len() });
    }
    let signed = data.get(..signature_offset).unwrap_or_default().to_vec();
    Ok(NvGpuReport {
        request,
        response_version,
        response_param1,
        response_param2,
        record_length,
        blocks,
        response_nonce,
        opaque,
        fields,
        signature_offset,
        signature,
        padding: rest.len(),
        signed,
    })
}

fn parse_record(record: &[u8], count: u8) -> Result<Vec<MeasurementBlock>, NvGpuParseError> {
    if count == 0 {
        return Err(NvGpuParseError::NoMeasurements);
    }
    let mut r = Reader::new(record);
    let mut blocks: Vec<MeasurementBlock> = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let index = r.u8("measurement Index")?;
        let specification = r.u8("MeasurementSpecification")?;
        if specification != 0x01 {
            return Err(NvGpuParseError::NotDmtf {
                index,
                specification,
            });
        }
        let block_size = usize::from(r.u16("MeasurementSize")?);
        let value_type = r.u8("DMTFSpecMeasurementValueType")?;
        let value_size = usize::from(r.u16("DMTFSpecMeasurementValueSize")?);
        if value_size.checked_add(3) != Some(block_size) {
            return Err(NvGpuParseError::BlockSize {
                index,
                block_size,
                value_size,
            });
        }
        let value = r.take("DMTFSpecMeasurementValue", value_size)?.to_vec();
        if blocks.iter().any(|b| b.index == index) {
            return Err(NvGpuParseError::DuplicateIndex(index));
        }
        blocks.push(MeasurementBlock {
            index,
            value_type,
            value,
        });
    }
    if r.pos != record.len() {
        return Err(NvGpuParseError::RecordLength {
            declared: record.len(),
            used: r.pos,
            blocks: count,
        });
    }
    Ok(blocks)
}

fn parse_opaque(data: &[u8]) -> Result<Vec<OpaqueField>, NvGpuParseError> {
    let mut r = Reader::new(data);
    let mut out: Vec<OpaqueField> = Vec::new();
    while r.pos < data.len() {
        let offset = r.pos;
        let id = r.u16("opaque field type")?;
        let len = usize::from(
            r.u16("opaque field length")
                .map_err(|_| NvGpuParseError::OpaqueOverrun { id, offset })?,
        );
        let value = r
            .take("opaque field value", len)
            .map_err(|_| NvGpuParseError::OpaqueOverrun { id, offset })?;
        if out.iter().any(|f| f.id == id) {
            return Err(NvGpuParseError::DuplicateField(id));
        }
        out.push(OpaqueField {
            id,
            value: value.to_vec(),
        });
    }
    Ok(out)
}

/// A NUL-terminated (or NUL-padded) ASCII string field.
fn ascii(name: &'static str, value: &[u8]) -> Result<String, NvGpuParseError> {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    let (text, pad) = value.split_at(end);
    if pad.iter().any(|b| *b != 0) {
        return Err(NvGpuParseError::BadField {
            name,
            reason: "text after the terminating NUL",
        });
    }
    if !text.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Err(NvGpuParseError::BadField {
            name,
            reason: "not printable ASCII",
        });
    }
    Ok(text.iter().map(|b| char::from(*b)).collect())
}

/// A little-endian unsigned integer of one to four bytes (NVIDIA widened some
/// status fields from one byte to two between firmware releases).
fn le_uint(name: &'static str, value: &[u8]) -> Result<u32, NvGpuParseError> {
    if value.is_empty() || value.len() > 4 {
        return Err(NvGpuParseError::BadField {
            name,
            reason: "expected a 1- to 4-byte integer",
        });
    }
    let mut w = [0u8; 4];
    for (dst, src) in w.iter_mut().zip(value) {
        *dst = *src;
    }
    Ok(u32::from_le_bytes(w))
}

/// Formats NVIDIA's 8-byte VBIOS version field as `xx.xx.xx.xx.xx`.
///
/// The field is a little-endian u64 whose low 32 bits hold the first four
/// components (most significant first) and whose bits 32..40 hold the last one;
/// e.g. bytes `00 9f 00 96 01 00 00 00` read `96.00.9f.00.01`.
pub(crate) fn format_vbios_version(value: &[u8]) -> Option<String> {
    let b: [u8; 8] = value.try_into().ok()?;
    let [b0, b1, b2, b3, b4, ..] = b;
    Some(alloc::format!(
        "{b3:02x}.{b2:02x}.{b1:02x}.{b0:02x}.{b4:02x}"
    ))
}

fn typed_fields(opaque: &[OpaqueField]) -> Result<GpuFields, NvGpuParseError> {
    let mut f = GpuFields::default();
    for o in opaque {
        let v = o.value.as_slice();
        match o.id {
            field::DRIVER_VERSION => f.driver_version = Some(ascii("DRIVER_VERSION", v)?),
            field::VBIOS_VERSION => {
                f.vbios_version =
                    Some(format_vbios_version(v).ok_or(NvGpuParseError::BadField {
                        name: "VBIOS_VERSION",
                        reason: "expected 8 bytes",
                    })?);
            }
            field::FWID => {
                if v.len() != 48 {
                    return Err(NvGpuParseError::BadField {
                        name: "FWID",
                        reason: "expected 48 bytes",
                    });
                }
                f.fwid = Some(v.to_vec());
            }
            field::PROJECT => f.project = Some(ascii("PROJECT", v)?),
            field::PROJECT_SKU => f.project_sku = Some(ascii("PROJECT_SKU", v)?),
            field::CHIP_SKU => f.chip_sku = Some(ascii("CHIP_SKU", v)?),
            field::BOARD_ID => f.board_id = Some(v.to_vec()),
            field::GPU_INFO => f.gpu_info = Some(v.to_vec()),
            field::NVDEC0_STATUS => f.nvdec0_status = Some(le_uint("NVDEC0_STATUS", v)?),
            field::PROTECTED_PCIE_STATUS => {
                f.protected_pcie_status = Some(le_uint("PROTECTED_PCIE_STATUS", v)?);
            }
            field::FEATURE_FLAG => f.feature_flag = Some(le_uint("FEATURE_FLAG", v)?),
            field::OPAQUE_DATA_VERSION => f.opaque_data_version = Some(v.to_vec()),
            field::MSRSCNT => {
                let chunks = v.chunks_exact(4);
                if !chunks.remainder().is_empty() {
                    return Err(NvGpuParseError::BadField {
                        name: "MSRSCNT",
                        reason: "length is not a multiple of 4",
                    });
                }
                f.measurement_counts = chunks
                    .map(|c| {
                        let mut w = [0u8; 4];
                        w.copy_from_slice(c);
                        u32::from_le_bytes(w)
                    })
                    .collect();
            }
            _ => {}
        }
    }
    Ok(f)
}

/// Splits a PEM certificate chain (as NVML returns it: leaf first) into DER
/// certificates. Text between blocks is ignored; a block that is not valid
/// base64 is an error.
pub fn split_pem_chain(pem: &str) -> Result<Vec<Vec<u8>>, PemError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body_start = start.saturating_add(BEGIN.len());
        let after = rest.get(body_start..).unwrap_or_default();
        let end = after.find(END).ok_or(PemError::Unterminated {
            certificate: out.len(),
        })?;
        let body = after.get(..end).unwrap_or_default();
        out.push(decode_base64(body).map_err(|()| PemError::Base64 {
            certificate: out.len(),
        })?);
        rest = after
            .get(end.saturating_add(END.len())..)
            .unwrap_or_default();
    }
    if out.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(out)
}

/// Decodes base64 that may be broken by whitespace (PEM bodies, XML text).
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, ()> {
    use base64ct::Encoding;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64ct::Base64::decode_vec(&compact).map_err(|_| ())
}

/// Why a PEM certificate chain could not be split.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// No certificate in the text.
    #[error("no PEM certificate found")]
    Empty,
    /// A certificate block has no END line.
    #[error("PEM certificate {certificate} has no END line")]
    Unterminated {
        /// Its position in the chain (0 = leaf).
        certificate: usize,
    },
    /// A certificate block is not valid base64.
    #[error("PEM certificate {certificate} is not valid base64")]
    Base64 {
        /// Its position in the chain (0 = leaf).
        certificate: usize,
    },
}

#[cfg(test)]
mod tests;

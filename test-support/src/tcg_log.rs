//! Synthetic TCG PC Client crypto-agile event logs, as a TPM's firmware writes them
//! (Linux: `/sys/kernel/security/tpm0/binary_bios_measurements`): a SHA-1-format
//! `Spec ID Event03` header, then `TCG_PCR_EVENT2` records with a SHA-1 and a SHA-256
//! digest each.

/// `EV_NO_ACTION`.
pub const EV_NO_ACTION: u32 = 0x3;
/// `EV_SEPARATOR`.
pub const EV_SEPARATOR: u32 = 0x4;
/// `EV_POST_CODE`.
pub const EV_POST_CODE: u32 = 0x1;
/// `EV_EFI_BOOT_SERVICES_APPLICATION`.
pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
/// `EV_IPL`.
pub const EV_IPL: u32 = 0xd;

const TPM_ALG_SHA1: u16 = 0x0004;
const TPM_ALG_SHA256: u16 = 0x000b;

/// One event to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    /// The PCR.
    pub pcr: u32,
    /// The event type.
    pub event_type: u32,
    /// The SHA-256 digest extended.
    pub sha256: [u8; 32],
    /// The event data.
    pub data: Vec<u8>,
}

impl LogEvent {
    /// An event of `event_type` on `pcr` whose digest is SHA-256 of `data` (as firmware
    /// logs most events).
    pub fn measured(pcr: u32, event_type: u32, data: &[u8]) -> Self {
        use sha2::Digest;
        Self {
            pcr,
            event_type,
            sha256: sha2::Sha256::digest(data).into(),
            data: data.to_vec(),
        }
    }

    /// The `EV_NO_ACTION` `StartupLocality` event (PCR 0) for `locality`.
    pub fn startup_locality(locality: u8) -> Self {
        let mut data = b"StartupLocality\0".to_vec();
        data.push(locality);
        Self {
            pcr: 0,
            event_type: EV_NO_ACTION,
            sha256: [0; 32],
            data,
        }
    }
}

/// The Spec ID header listing SHA-1 and SHA-256.
pub fn header() -> Vec<u8> {
    let mut spec = Vec::new();
    spec.extend_from_slice(b"Spec ID Event03\0");
    spec.extend_from_slice(&0u32.to_le_bytes()); // platform class
    spec.extend_from_slice(&[0, 2, 0, 2]); // spec version 2.0, errata 0, uintn 8 bytes
    spec.extend_from_slice(&2u32.to_le_bytes());
    for (alg, size) in [(TPM_ALG_SHA1, 20u16), (TPM_ALG_SHA256, 32)] {
        spec.extend_from_slice(&alg.to_le_bytes());
        spec.extend_from_slice(&size.to_le_bytes());
    }
    spec.push(0); // vendor info size
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    out.extend_from_slice(&[0u8; 20]);
    out.extend_from_slice(&(spec.len() as u32).to_le_bytes());
    out.extend_from_slice(&spec);
    out
}

/// One `TCG_PCR_EVENT2` record (SHA-1 digest: the SHA-256 digest's first 20 bytes;
/// nothing reads it).
pub fn record(e: &LogEvent) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&e.pcr.to_le_bytes());
    out.extend_from_slice(&e.event_type.to_le_bytes());
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&TPM_ALG_SHA1.to_le_bytes());
    out.extend_from_slice(&e.sha256[..20]);
    out.extend_from_slice(&TPM_ALG_SHA256.to_le_bytes());
    out.extend_from_slice(&e.sha256);
    out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&e.data);
    out
}

/// A whole log: the header, then `events`.
pub fn log(events: &[LogEvent]) -> Vec<u8> {
    let mut out = header();
    for e in events {
        out.extend_from_slice(&record(e));
    }
    out
}

/// The PCRs `events` replay to (index 0..=23), from the PC Client initial values
/// (PCRs 17-22 all ones; PCR 0's last byte the startup locality).
pub fn replay(events: &[LogEvent]) -> [[u8; 32]; 24] {
    use sha2::Digest;
    let mut pcrs = [[0u8; 32]; 24];
    for p in &mut pcrs[17..=22] {
        *p = [0xff; 32];
    }
    for e in events {
        if e.event_type == EV_NO_ACTION {
            if e.data.starts_with(b"StartupLocality\0") {
                pcrs[0][31] = e.data[16];
            }
            continue;
        }
        let reg = &mut pcrs[e.pcr as usize];
        let mut h = sha2::Sha256::new();
        h.update(*reg);
        h.update(e.sha256);
        *reg = h.finalize().into();
    }
    pcrs
}

/// A plausible boot: a startup locality, firmware events on PCRs 0-7 ending in
/// separators, a boot application on PCR 4 and a command line on PCR 8.
pub fn sample_boot() -> Vec<LogEvent> {
    let mut events = vec![LogEvent::startup_locality(3)];
    events.push(LogEvent::measured(0, EV_POST_CODE, b"firmware volume"));
    for pcr in 0..8 {
        events.push(LogEvent::measured(pcr, EV_SEPARATOR, &[0; 4]));
    }
    events.push(LogEvent::measured(
        4,
        EV_EFI_BOOT_SERVICES_APPLICATION,
        b"\\EFI\\BOOT\\BOOTX64.EFI",
    ));
    events.push(LogEvent::measured(
        8,
        EV_IPL,
        b"kernel_cmdline: console=ttyS0\0",
    ));
    events
}

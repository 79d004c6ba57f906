// Policy rules in words. A policy document is shown as the verifier's canonical TOML; each
// `key = value` line becomes a sentence. Keys without a sentence here are shown as they are.
const KNOWN = {
  allow_simulated: (v) => (v === 'true' ? 'Evidence from the agent simulator is accepted (development only).' : 'Evidence from the agent simulator is refused.'),
  tees: (v) => `Accepted TEE kinds: ${list(v) || 'SEV-SNP and TDX (the default)'}.`,
  key_lifetime_secs: (v) => `An attested key stays valid ${dur(v)} after its evidence was produced.`,
  'simulated.measurements': (v) => `The simulator's measurement (the agent build) must be one of: ${list(v) || 'any'}.`,
  'snp.allow_debug': (v) => `SEV-SNP guests with debugging enabled are ${v === 'true' ? 'accepted' : 'refused'}.`,
  'snp.allow_migration_agent': (v) => `A migration agent is ${v === 'true' ? 'allowed' : 'not allowed'}.`,
  'snp.allow_smt': (v) => `Simultaneous multithreading is ${v === 'true' ? 'allowed' : 'not allowed'}.`,
  'snp.measurements': (v) => `The SEV-SNP launch measurement must be one of: ${list(v) || 'any'}.`,
  'snp.report_data': (v) => `REPORT_DATA must be ${v}.`,
  'snp.host_data': (v) => `HOST_DATA must be ${v}.`,
  'snp.min_tcb.bootloader': (v) => `Boot loader SPL at least ${v}.`,
  'snp.min_tcb.tee': (v) => `PSP OS (TEE) SPL at least ${v}.`,
  'snp.min_tcb.snp': (v) => `SNP firmware SPL at least ${v}.`,
  'snp.min_tcb.microcode': (v) => `Microcode SPL at least ${v}.`,
  'snp.min_tcb.fmc': (v) => `FMC SPL at least ${v} (Turin).`,
  'snp.vmpls': (v) => `The report must come from VMPL ${list(v) || 'any'}.`,
  'snp.id_key_digests': (v) => `ID key digest one of: ${list(v) || 'any'}.`,
  'snp.author_key_digests': (v) => `Author key digest one of: ${list(v) || 'any'}.`,
  'snp.signing_keys': (v) => `Report signing key kinds accepted: ${list(v) || 'VCEK and VLEK'}.`,
  'snp.min_guest_svn': (v) => `Guest SVN at least ${v}.`,
  'snp.products': (v) => `Processor products accepted: ${list(v) || 'any'}.`,
  'snp.allow_chip_ids': (v) => `Only these chips: ${list(v) || 'any'}.`,
  'snp.deny_chip_ids': (v) => `Never these chips: ${list(v) || 'none'}.`,
  'snp.crl_max_age_secs': (v) => `The AMD CRL must be at most ${dur(v)} old.`,
  'tdx.allow_debug': (v) => `TDX guests with debugging enabled are ${v === 'true' ? 'accepted' : 'refused'}.`,
  'tdx.allow_migratable': (v) => `Migratable TDs are ${v === 'true' ? 'accepted' : 'refused'}.`,
  'tdx.allow_service_td': (v) => `Service TDs are ${v === 'true' ? 'accepted' : 'refused'}.`,
  'tdx.require_sept_ve_disable': (v) => `SEPT_VE_DISABLE ${v === 'true' ? 'must be set' : 'may be unset'}.`,
  'tdx.mrtds': (v) => `MRTD (the TD's launch measurement) must be one of: ${list(v) || 'any'}.`,
  'tdx.mrseams': (v) => `MRSEAM (the TDX module) must be one of: ${list(v) || 'any'}.`,
  'tdx.mrconfigid': (v) => `MRCONFIGID must be ${v}.`,
  'tdx.mrowner': (v) => `MROWNER must be ${v}.`,
  'tdx.mrownerconfig': (v) => `MROWNERCONFIG must be ${v}.`,
  'tdx.td_attributes': (v) => `TD attributes must be ${v}.`,
  'tdx.report_data': (v) => `REPORT_DATA must be ${v}.`,
  'tdx.accepted_tcb_statuses': (v) => `Accepted Intel TCB statuses: ${list(v) || 'UpToDate only'}.`,
  'tdx.accepted_advisory_ids': (v) => `Security advisories tolerated: ${list(v) || 'none'}.`,
  'tdx.rejected_advisory_ids': (v) => `Security advisories refused outright: ${list(v) || 'none'}.`,
  'tdx.min_tcb_evaluation_data_number': (v) => `Intel's TCB evaluation data number at least ${v}.`,
  'tdx.allow_fmspcs': (v) => `Only these platforms (FMSPC): ${list(v) || 'any'}.`,
  'tdx.deny_fmspcs': (v) => `Never these platforms (FMSPC): ${list(v) || 'none'}.`,
  'tdx.allow_ppids': (v) => `Only these platform ids (PPID): ${list(v) || 'any'}.`,
  'tdx.deny_ppids': (v) => `Never these platform ids (PPID): ${list(v) || 'none'}.`,
  'tdx.max_collateral_age_secs': (v) => `Intel collateral at most ${dur(v)} old.`,
  'tdx.events': (v) => (v.trim() === '[]' ? 'No boot event required.' : `The boot event log must hold these events: ${v}.`),
  'tdx.agent_digests': (v) => `The Sigil agent executable (measured into RTMR3) must be one of: ${list(v) || 'any'}.`,
  'tdx.config_digests': (v) => `The agent's configuration (measured into RTMR3) must be one of: ${list(v) || 'any'}.`,
  'vtpm.pcrs': (v) => (v.trim() === '[]' ? 'No vTPM PCR pinned.' : `The vTPM's quoted PCRs must hold: ${v}.`),
  'tdx.collateral_grace_seconds': (v) => `Collateral accepted up to ${dur(v)} past its next update.`,
  'gpu.min_count': (v) => `At least ${v} verified GPU report(s).`,
  'gpu.models': (v) => `GPU models accepted: ${list(v) || 'any'}.`,
  'gpu.min_driver_version': (v) => `GPU driver at least ${v}.`,
  'gpu.allowed_vbios_versions': (v) => `VBIOS versions accepted: ${list(v) || 'any'}.`,
  'gpu.rim_match_required': (v) => `GPU measurements ${v === 'true' ? 'must match' : 'need not match'} NVIDIA's reference values (RIMs).`,
  'gpu.ocsp_required': (v) => `OCSP status of the GPU certificates ${v === 'true' ? 'is required' : 'is optional'}.`,
  'gpu.ocsp_max_age_secs': (v) => `OCSP responses at most ${dur(v)} old.`,
  'gpu.allowed_modes': (v) => `GPU confidential-computing modes accepted: ${list(v) || 'any'}.`,
  'gpu.allowed_archs': (v) => `GPU architectures accepted: ${list(v) || 'any'}.`,
  'gpu.require_confidential_mode': (v) => `GPUs ${v === 'true' ? 'must be' : 'need not be'} in confidential-computing mode.`,
};

function list(v) {
  const m = /^\[(.*)\]$/s.exec(v.trim());
  const inner = m ? m[1] : v;
  return inner
    .split(',')
    .map((s) => s.trim().replace(/^"|"$/g, ''))
    .filter(Boolean)
    .join(', ');
}

function dur(v) {
  const s = Number(v);
  if (!Number.isFinite(s)) return `${v} s`;
  if (s % 86400 === 0) return `${s / 86400} day(s)`;
  if (s % 3600 === 0) return `${s / 3600} hour(s)`;
  return `${s} s`;
}

/** `[{key, value, words}]` for every rule of a canonical policy TOML. */
export function rules(toml) {
  const out = [];
  let table = '';
  let pending = null;
  for (const raw of toml.split('\n')) {
    const line = raw.trim();
    if (pending) {
      pending.value += ` ${line}`;
      if (line.endsWith(']')) {
        out.push(pending);
        pending = null;
      }
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const t = /^\[([^\]]+)\]$/.exec(line);
    if (t) {
      table = t[1];
      continue;
    }
    const kv = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (!kv) continue;
    const key = table ? `${table}.${kv[1]}` : kv[1];
    const item = { key, value: kv[2] };
    if (kv[2].startsWith('[') && !kv[2].endsWith(']')) pending = item;
    else out.push(item);
  }
  return out.map((r) => ({ ...r, words: (KNOWN[r.key] ?? ((v) => `${r.key} = ${v}`))(r.value) }));
}

// The WASM verifier (explorer/wasm, built by build-wasm.sh into pkg/): loaded once, on first use.
import init, * as wasm from '../pkg/sigil_explorer_wasm.js';
import wasmUrl from '../pkg/sigil_explorer_wasm_bg.wasm?url';

let ready;
export function loadVerifier() {
  ready ??= init({ module_or_path: wasmUrl }).then(() => wasm);
  return ready;
}

/** Parses the verifier's JSON; a result that is not JSON is an error result, never a throw. */
export function parse(json) {
  try {
    return JSON.parse(json);
  } catch (e) {
    return { error: `the verifier returned no result (${e})` };
  }
}

/** Replays a job record (chain.replayInput); `{report, ms}`. */
export async function replay(input) {
  const v = await loadVerifier();
  const json = JSON.stringify(input);
  const t0 = performance.now();
  let out;
  try {
    out = v.replay_job(json);
  } catch (e) {
    return { report: { error: `the verifier stopped: ${e}` }, ms: performance.now() - t0 };
  }
  return { report: parse(out), ms: performance.now() - t0 };
}

export async function checkReceipt(receipt, bundle, policy, allowSimulated, atSecs) {
  const v = await loadVerifier();
  const t0 = performance.now();
  try {
    const out = v.check_receipt_file(receipt, bundle ?? undefined, policy, allowSimulated, atSecs);
    return { result: parse(out), ms: performance.now() - t0 };
  } catch (e) {
    return { result: { error: `the verifier stopped: ${e}` }, ms: performance.now() - t0 };
  }
}

export async function checkBundle(bundle, key, nonce, policy, allowSimulated, atSecs) {
  const v = await loadVerifier();
  const t0 = performance.now();
  try {
    const out = v.check_bundle_file(bundle, key, nonce, policy, allowSimulated, atSecs);
    return { result: parse(out), ms: performance.now() - t0 };
  } catch (e) {
    return { result: { error: `the verifier stopped: ${e}` }, ms: performance.now() - t0 };
  }
}

export async function policyDocument(id, documentHex) {
  const v = await loadVerifier();
  try {
    return parse(v.policy_document(id, documentHex));
  } catch (e) {
    return { error: `the verifier stopped: ${e}` };
  }
}

export async function genesisPolicies() {
  const v = await loadVerifier();
  const r = parse(v.genesis_policies());
  return Array.isArray(r) ? r : [];
}

export async function checkSnp(report, vek, ask, ark, crl, policy, atSecs) {
  const v = await loadVerifier();
  const t0 = performance.now();
  try {
    const out = v.check_snp_file(report, vek, ask ?? undefined, ark ?? undefined, crl ?? undefined, policy, atSecs);
    return { result: parse(out), ms: performance.now() - t0 };
  } catch (e) {
    return { result: { error: `the verifier stopped: ${e}` }, ms: performance.now() - t0 };
  }
}

export async function checkTdx(quote, collateral, policy, atSecs) {
  const v = await loadVerifier();
  const t0 = performance.now();
  try {
    const out = v.check_tdx_file(quote, collateral, policy, atSecs);
    return { result: parse(out), ms: performance.now() - t0 };
  } catch (e) {
    return { result: { error: `the verifier stopped: ${e}` }, ms: performance.now() - t0 };
  }
}

/** A certificate or CRL as DER: PEM's first block decoded, anything else as it is. */
export function der(bytes) {
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, Math.min(bytes.length, 1 << 20)));
  const m = /-----BEGIN [A-Z0-9 ]+-----([A-Za-z0-9+/=\s]+)-----END [A-Z0-9 ]+-----/.exec(text);
  if (!m) return bytes;
  try {
    const b64 = m[1].replace(/\s+/g, '');
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    return bytes;
  }
}

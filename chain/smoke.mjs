// Smoke test of a running local Sigil chain over its JSON-RPC (polkadot.js API).
//
// Usage: node chain/smoke.mjs [ws://127.0.0.1:9944]
//
// Submits, and checks the events and storage of:
//  1. a MINT transfer (Alice -> Bob);
//  2. a tier-1 job: a provider registers its ed25519 receipt key and offers (a bond held), Bob
//     funds the job (escrow held) and the chain binds the provider in the same block, the
//     provider's signed receipt settles the job and the escrow moves to the provider;
//  3. a tier-3 job under the genesis simulated policy: a provider registers an attested key
//     with simulated evidence bound to the chain's registration nonce, verified in the runtime
//     by the attestation verifier (a tampered copy is refused), offers, and an attested-key
//     receipt settles the job the chain bound to it.
// The runtime has no sudo and no dispatcher set; the script checks that too.
// Exits non-zero on the first failed check. Prints a JSON summary.

import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { compactToU8a, stringToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, ed25519PairFromSeed, ed25519Sign, randomAsU8a, sha256AsU8a, sha512AsU8a } from '@polkadot/util-crypto';

const MINT = 10n ** 12n;
// An offer's bond: the runtime's minimum.
const BOND = 10n * MINT;

// The genesis policy that accepts only simulated evidence (no owner): its id, read from chain.
async function simulatedPolicy(api) {
  for (const [key, record] of await api.query.market.policies.entries()) {
    const r = record.unwrap();
    const tees = r.tees.map(String);
    if (r.owner.isNone && tees.length === 1 && tees[0] === 'Simulated') return key.args[0].toHex();
  }
  throw new Error('check failed: no genesis simulated policy on chain');
}
const url = process.argv[2] ?? 'ws://127.0.0.1:9944';

const te = (s) => stringToU8a(s);
const u8 = (n) => Uint8Array.of(n);
const le = (value, bytes) => {
  const out = new Uint8Array(bytes);
  let v = BigInt.asUintN(bytes * 8, BigInt(value));
  for (let i = 0; i < bytes; i++) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
};
// The registration nonce evidence must bind (pallet `registration_nonce`).
const registrationNonce = (genesis, anchorHash, account) =>
  sha256AsU8a(u8aConcat(te('sigil.registration-nonce.v1\0'), genesis, anchorHash, account));

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// Nonces are counted here: chopsticks may answer `system_accountNextIndex` from the previous
// head right after announcing a block, which would make the next extrinsic stale.
const nonces = new Map();
async function nextNonce(api, address) {
  if (!nonces.has(address)) nonces.set(address, (await api.query.system.account(address)).nonce.toNumber());
  const nonce = nonces.get(address);
  nonces.set(address, nonce + 1);
  return nonce;
}

// Byte-vector arguments (`Bytes`) are passed as hex: polkadot.js takes a Uint8Array there as
// already SCALE-encoded (length-prefixed).
// Submits `tx` signed by `signer`; resolves with the block's events of this extrinsic, or rejects
// with the decoded dispatch error.
async function send(api, tx, signer) {
  const nonce = await nextNonce(api, signer.address);
  return new Promise((resolve, reject) => {
    let unsub = () => {};
    tx.signAndSend(signer, { nonce }, ({ status, events, dispatchError }) => {
      if (!status.isInBlock && !status.isFinalized) return;
      unsub();
      if (dispatchError) {
        let msg = dispatchError.toString();
        if (dispatchError.isModule) {
          const m = api.registry.findMetaError(dispatchError.asModule);
          msg = `${m.section}.${m.name}`;
          if (m.name === 'AttestationRejected') {
            msg += `(${attestationFailure(api, dispatchError.asModule.error[1])})`;
          }
        }
        reject(Object.assign(new Error(msg), { dispatch: msg, events }));
        return;
      }
      resolve(events.map(({ event }) => event));
    }).then((u) => { unsub = u; }, reject);
  });
}

// The name of the market's `AttestationFailure` variant with index `index`, from the metadata.
function attestationFailure(api, index) {
  for (const { type } of api.registry.lookup.types) {
    if (type.path.map(String).join('::').endsWith('AttestationFailure') && type.def.isVariant) {
      const v = type.def.asVariant.variants.find((x) => x.index.toNumber() === index);
      if (v) return v.name.toString();
    }
  }
  return `#${index}`;
}

async function expectFailure(promise, want) {
  try {
    await promise;
  } catch (e) {
    check(e.dispatch && e.dispatch.includes(want), `dispatch error ${want}, got ${e.message}`);
    return e.dispatch;
  }
  throw new Error(`expected ${want}, the call succeeded`);
}

const find = (events, section, method) => events.find((e) => e.section === section && e.method === method);

// Receipt body (docs/receipts.md): fixed-width SCALE, 228 bytes.
function receiptBody({ jobId, specHash, provider, tier, result, startedMs, finishedMs, mode, tee, evidenceDigest }) {
  const body = u8aConcat(
    u8(1), jobId, specHash, provider, u8(tier), result, le(1, 4), le(startedMs, 8), le(finishedMs, 8), le(0, 4),
    le(finishedMs - startedMs, 8), le(10, 8), le(1 << 20, 8), le(0, 8), le(0, 8),
    u8(mode), u8(tee), evidenceDigest,
  );
  check(body.length === 228, 'receipt body is 228 bytes');
  return body;
}
const receiptDigest = (body) => sha256AsU8a(u8aConcat(te('sigil.receipt.v1\0'), body));

// Simulated evidence bundle (docs/evidence-bundle.md), as the agent's simulator writes it.
function simulatedBundle(agentKey, nonce, measurement, simulatorSeed) {
  const reportData = sha512AsU8a(u8aConcat(te('sigil.report-data.v1\0'), agentKey, new Uint8Array(32), nonce));
  const sim = ed25519PairFromSeed(simulatorSeed);
  const body = u8aConcat(te('SIGIL-SIMULATED\0'), u8(1), reportData, measurement, u8(1), sim.publicKey);
  const signature = ed25519Sign(u8aConcat(te('sigil.simulated-report.v1\0'), body), sim);
  const report = u8aConcat(body, compactToU8a(signature.length), signature);
  return u8aConcat(te('SGEB'), u8(1), u8(3), agentKey, nonce, u8(3), compactToU8a(report.length), report, compactToU8a(0));
}
const evidenceDigest = (bundle) => sha256AsU8a(u8aConcat(te('sigil.evidence.v1\0'), bundle));

async function freeOf(api, who) {
  return (await api.query.system.account(who)).data.free.toBigInt();
}

async function registerProvider(api, pair, capabilities, attestation) {
  const proof = pair.sign(sha256AsU8a(u8aConcat(te('sigil.provider-key.v1\0'), pair.publicKey)));
  return send(api, api.tx.market.registerProvider(pair.publicKey, proof, capabilities, attestation), pair);
}

async function runJob(api, { bob, provider, terms, cls, tier, mode, tee, evidence }) {
  const jobId = randomAsU8a(32);
  const specHash = sha256AsU8a(te(`job spec ${u8aToHex(jobId)}`));
  const price = 5n * MINT;
  const head = (await api.rpc.chain.getHeader()).number.toNumber();
  // The provider offers (capacity 1), the chain binds it when the job is funded, and the offer
  // pauses again so that no later job is bound to it.
  await send(api, api.tx.market.setOffer(0, 1, BOND), provider);
  let ev = await send(api, api.tx.market.fundJob(jobId, specHash, terms, cls, price, head + 100, 0), bob);
  check(find(ev, 'market', 'JobFunded'), 'JobFunded');
  const held = (await api.query.system.account(bob.address)).data.reserved.toBigInt();
  check(held >= price, 'the price is held on the buyer');
  const bound = find(ev, 'market', 'JobBound');
  check(bound, 'JobBound in the funding block');
  check(bound.data.providers.map(String).includes(provider.address), 'bound to the offering provider');
  await send(api, api.tx.market.setOffer(0, 0, BOND), provider);

  const now = Date.now();
  const body = receiptBody({
    jobId, specHash, provider: provider.publicKey, tier, result: sha256AsU8a(te('outputs')),
    startedMs: now - 5_000, finishedMs: now, mode, tee, evidenceDigest: evidence,
  });
  const before = await freeOf(api, provider.address);
  ev = await send(api, api.tx.market.submitReceipt(jobId, u8aToHex(body), provider.sign(receiptDigest(body)), null), provider);
  check(find(ev, 'market', 'ReceiptAccepted'), 'ReceiptAccepted');
  const settled = find(ev, 'market', 'JobSettled');
  check(settled, 'JobSettled');
  const after = await freeOf(api, provider.address);
  check(after - before > price - MINT / 100n, 'the provider was paid the price (less its fee)');
  const job = (await api.query.market.jobs(jobId)).unwrap();
  check(job.status.toString() === 'Settled', `job status Settled, got ${job.status}`);
  const settlement = await api.query.market.settlements(jobId);
  check(settlement.isSome, 'settlement recorded');
  return { job: u8aToHex(jobId), paid: (after - before).toString(), receipt: u8aToHex(receiptDigest(body)) };
}

async function main() {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
  const summary = { url, chain: (await api.rpc.system.chain()).toString() };
  check(api.registry.chainTokens[0] === 'MINT', `token MINT, got ${api.registry.chainTokens}`);
  check(api.registry.chainDecimals[0] === 12, `12 decimals, got ${api.registry.chainDecimals}`);
  summary.runtime = `${api.runtimeVersion.specName}/${api.runtimeVersion.specVersion}`;

  const sr = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const ed = new Keyring({ type: 'ed25519', ss58Format: 42 });
  const alice = sr.addFromUri('//Alice');
  const bob = sr.addFromUri('//Bob');
  check(!api.tx.sudo && !api.query.dispatchers && !api.tx.market.bind, 'no sudo, no dispatcher set, no bind');
  const simulated = await simulatedPolicy(api);

  // 1. MINT transfer.
  const bobBefore = await freeOf(api, bob.address);
  let ev = await send(api, api.tx.balances.transferKeepAlive(bob.address, MINT), alice);
  check(find(ev, 'balances', 'Transfer'), 'Balances.Transfer event');
  check((await freeOf(api, bob.address)) - bobBefore === MINT, 'Bob received 1 MINT');
  summary.transfer = 'ok';

  // 2. Tier 1. Provider accounts are their ed25519 receipt keys; each run uses fresh ones.
  const tag = u8aToHex(randomAsU8a(8));
  const p1 = ed.addFromUri(`//SigilProvider//${tag}`);
  await send(api, api.tx.balances.transferKeepAlive(p1.address, 100n * MINT), alice);
  ev = await registerProvider(api, p1, { tiers: ['Signed'], teeKinds: [], gpuModel: '0x' }, null);
  check(find(ev, 'market', 'ProviderRegistered'), 'tier-1 ProviderRegistered');
  summary.tier1 = await runJob(api, {
    bob, provider: p1, terms: 'Signed', cls: { teeKinds: [], gpuModel: '0x', gpuCount: 0 }, tier: 1, mode: 0, tee: 0,
    evidence: new Uint8Array(32),
  });

  // 3. Tier 3, attested key, simulated evidence verified in the runtime.
  const p3 = ed.addFromUri(`//SigilAttested//${tag}`);
  const intruder = ed.addFromUri(`//SigilIntruder//${tag}`);
  await send(api, api.tx.balances.transferKeepAlive(p3.address, 100n * MINT), alice);
  await send(api, api.tx.balances.transferKeepAlive(intruder.address, 100n * MINT), alice);
  const caps = { tiers: ['Attested'], teeKinds: ['Simulated'], gpuModel: '0x' };
  const anchor = (await api.rpc.chain.getHeader()).number.toNumber();
  const anchorHash = (await api.rpc.chain.getBlockHash(anchor)).toU8a();
  const nonce = registrationNonce(api.genesisHash.toU8a(), anchorHash, p3.publicKey);
  const bundle = simulatedBundle(p3.publicKey, nonce, new Uint8Array(48).fill(0x11), randomAsU8a(32));
  const tampered = Uint8Array.from(bundle);
  tampered[tampered.length - 2] ^= 1; // a byte of the simulator's signature
  const tamperedError = await expectFailure(
    registerProvider(api, intruder, caps, { evidence: u8aToHex(tampered), collateral: '0x', policy: simulated, anchor }),
    'market.AttestationRejected(BadSignature)',
  );
  ev = await registerProvider(api, p3, caps, { evidence: u8aToHex(bundle), collateral: '0x', policy: simulated, anchor });
  const reg = find(ev, 'market', 'ProviderRegistered');
  check(reg, 'tier-3 ProviderRegistered');
  check(reg.data.attested.isSome, 'the key is attested');
  const record = await api.query.market.attestations(evidenceDigest(bundle));
  check(record.isSome, 'the verified evidence is stored by digest');
  summary.tier3 = await runJob(api, {
    bob, provider: p3, terms: { Attested: { policy: simulated, freshQuote: false } },
    cls: { teeKinds: ['Simulated'], gpuModel: '0x', gpuCount: 0 }, tier: 3, mode: 1, tee: 3, evidence: evidenceDigest(bundle),
  });
  summary.tier3.attested = reg.data.attested.toJSON();
  summary.tier3.tamperedEvidence = tamperedError;

  summary.head = (await api.rpc.chain.getHeader()).number.toNumber();
  console.log(JSON.stringify(summary, null, 2));
  await api.disconnect();
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});

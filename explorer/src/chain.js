// Reading the market from a Sigil node: polkadot.js over the node's JSON-RPC, decoding storage
// and events with the node's own metadata. Storage of pallet `Market`: Jobs, Bindings,
// Receipts (job, provider), Settlements, Attestations (digest), Policies (id), Providers,
// Penalties. Nothing here signs or submits anything.
import { ApiPromise, WsProvider } from '@polkadot/api';

export const STATUSES = ['Funded', 'Bound', 'Settled', 'Refunded'];

/** Connects to the node; resolves once its metadata is loaded. */
export async function connect(url, onState) {
  const provider = new WsProvider(url, 2000);
  provider.on('connected', () => onState?.('connected'));
  provider.on('disconnected', () => onState?.('disconnected'));
  provider.on('error', () => onState?.('error'));
  const api = await ApiPromise.create({ provider, noInitWarn: true, throwOnConnect: false });
  await api.isReady;
  return api;
}

const hex = (c) => c.toHex();
const big = (c) => c.toBigInt();
const num = (c) => c.toNumber();
// Unix milliseconds (u64): null past 2^53 (the chain's "never", u64::MAX).
const ms = (c) => {
  const b = c.toBigInt();
  return b > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(b);
};
const text = (c) => {
  try {
    return new TextDecoder('utf-8', { fatal: false }).decode(c.toU8a(true));
  } catch {
    return c.toHex();
  }
};

export function terms(t) {
  if (t.isAttested) {
    const a = t.asAttested;
    return { tier: 3, policy: hex(a.policy), freshQuote: a.freshQuote.isTrue };
  }
  if (t.isQuorum) {
    const q = t.asQuorum;
    return { tier: 2, k: num(q.k), n: num(q.n) };
  }
  return { tier: 1 };
}

function job(id, j) {
  return {
    id,
    buyer: j.buyer.toString(),
    specHash: hex(j.specHash),
    terms: terms(j.terms),
    class: {
      teeKinds: j.class.teeKinds.map((k) => k.type),
      gpuModel: text(j.class.gpuModel),
      gpuCount: num(j.class.gpuCount),
    },
    price: big(j.price),
    deadline: num(j.deadline),
    fundedAt: num(j.fundedAt),
    responseBlocks: num(j.responseBlocks),
    status: j.status.type,
  };
}

function receipt(provider, r) {
  return {
    provider,
    providerHex: null,
    body: hex(r.body),
    signature: hex(r.signature),
    digest: hex(r.digest),
    resultCommitment: hex(r.resultCommitment),
    evidenceDigest: r.evidenceDigest.isSome ? hex(r.evidenceDigest.unwrap()) : null,
    submittedAt: num(r.submittedAt),
  };
}

function settlement(s) {
  const o = s.outcome;
  if (o.isPaid) {
    const p = o.asPaid;
    return {
      at: num(s.at),
      paid: {
        resultCommitment: hex(p.resultCommitment),
        payees: p.payees.map(([a, amount]) => ({
          account: a.toString(),
          accountHex: hex(a),
          amount: big(amount),
        })),
      },
    };
  }
  return { at: num(s.at), refunded: { amount: big(o.asRefunded.amount) } };
}

export function provider(account, p) {
  const a = p.attested.isSome ? p.attested.unwrap() : null;
  return {
    account,
    signingKey: hex(p.signingKey),
    tiers: p.capabilities.tiers.map((t) => t.type),
    teeKinds: p.capabilities.teeKinds.map((t) => t.type),
    gpuModel: text(p.capabilities.gpuModel),
    registeredAt: num(p.registeredAt),
    activeJobs: num(p.activeJobs),
    deposit: big(p.deposit),
    retiring: p.retiring.isSome
      ? { signingKey: hex(p.retiring.unwrap().signingKey), openJobs: num(p.retiring.unwrap().openJobs) }
      : null,
    offer: p.offer.isSome
      ? {
          price: big(p.offer.unwrap().price),
          capacity: num(p.offer.unwrap().capacity),
          bond: big(p.offer.unwrap().bond),
        }
      : null,
    attested: a && {
      tee: a.tee.type,
      measurement: hex(a.measurement),
      policy: hex(a.policy),
      evidenceDigest: hex(a.evidenceDigest),
      verifiedAtMs: ms(a.verifiedAtMs),
      expiresAtMs: ms(a.expiresAtMs),
      gpuCount: num(a.gpuCount),
      gpuChip: text(a.gpuChip),
      gpuDriver: text(a.gpuDriver),
      gpuVbios: text(a.gpuVbios),
      sealingKey: a.sealingKey && a.sealingKey.isSome ? hex(a.sealingKey.unwrap()) : null,
      previous: a.previous.isSome
        ? {
            evidenceDigest: hex(a.previous.unwrap().evidenceDigest),
            expiresAtMs: ms(a.previous.unwrap().expiresAtMs),
          }
        : null,
    },
  };
}

export function policyRecord(id, p) {
  return {
    id,
    document: hex(p.document),
    owner: p.owner.isSome ? p.owner.unwrap().toString() : null,
    deposit: big(p.deposit),
    tees: p.tees.map((t) => t.type),
    unpinned: p.unpinned.isSome ? p.unpinned.unwrap().toString() : null,
    keyLifetimeMs: p.keyLifetimeMs.isSome ? ms(p.keyLifetimeMs.unwrap()) : null,
    users: num(p.users),
    registeredAt: num(p.registeredAt),
  };
}

/** Every job, with what the market view shows: binding, receipt count, settlement. */
export async function market(api) {
  const [jobs, bindings, receipts, settlements] = await Promise.all([
    api.query.market.jobs.entries(),
    api.query.market.bindings.entries(),
    api.query.market.receipts.entries(),
    api.query.market.settlements.entries(),
  ]);
  const byId = new Map();
  for (const [k, v] of jobs) {
    if (v.isSome) byId.set(hex(k.args[0]), { ...job(hex(k.args[0]), v.unwrap()), receipts: 0 });
  }
  for (const [k, v] of bindings) {
    const j = byId.get(hex(k.args[0]));
    if (j && v.isSome) j.bound = v.unwrap().providers.map((p) => p.toString());
  }
  for (const [k] of receipts) {
    const j = byId.get(hex(k.args[0]));
    if (j) j.receipts += 1;
  }
  for (const [k, v] of settlements) {
    const j = byId.get(hex(k.args[0]));
    if (j && v.isSome) j.settlement = settlement(v.unwrap());
  }
  return [...byId.values()].sort((a, b) => b.fundedAt - a.fundedAt || a.id.localeCompare(b.id));
}

/** Everything the chain keeps about one job (as `sigil audit job`), or null. */
export async function jobRecord(api, id) {
  const j = await api.query.market.jobs(id);
  if (j.isNone) return null;
  const record = { job: job(id, j.unwrap()) };
  const [binding, receipts, settle, penalties] = await Promise.all([
    api.query.market.bindings(id),
    api.query.market.receipts.entries(id),
    api.query.market.settlements(id),
    api.query.market.penalties(id),
  ]);
  record.binding = binding.isSome
    ? {
        providers: binding.unwrap().providers.map((p) => p.toString()),
        // The receipt key each provider was bound under (it may have rotated since).
        // From JSON: the codec renames a field called `keys` (its Map method's name).
        keys: binding.unwrap().toJSON().keys,
        boundAt: num(binding.unwrap().boundAt),
      }
    : null;
  record.receipts = receipts
    .filter(([, v]) => v.isSome)
    .map(([k, v]) => ({ ...receipt(k.args[1].toString(), v.unwrap()), providerHex: hex(k.args[1]) }))
    .sort((a, b) => a.submittedAt - b.submittedAt);
  record.settlement = settle.isSome ? settlement(settle.unwrap()) : null;
  record.penalties = penalties.map((p) => ({
    provider: p.provider.toString(),
    reason: p.reason.type,
    amount: big(p.amount),
    at: num(p.at),
  }));
  // The providers the receipts name (registered ones), the evidence and the policy.
  const accounts = [...new Set([...(record.binding?.providers ?? []), ...record.receipts.map((r) => r.provider)])];
  record.providers = [];
  for (const a of accounts) {
    const p = await api.query.market.providers(a);
    if (p.isSome) record.providers.push({ ...provider(a, p.unwrap()), accountHex: api.createType('AccountId32', a).toHex() });
  }
  record.attestations = [];
  for (const d of new Set(record.receipts.map((r) => r.evidenceDigest).filter(Boolean))) {
    const a = await api.query.market.attestations(d);
    if (a.isSome) {
      const x = a.unwrap();
      record.attestations.push({
        digest: d,
        evidence: hex(x.evidence),
        collateral: hex(x.collateral),
        policy: hex(x.policy),
        key: hex(x.key),
        tee: x.tee.type,
        measurement: hex(x.measurement),
        nonce: hex(x.nonce),
        verifiedAtMs: ms(x.verifiedAtMs),
        expiresAtMs: ms(x.expiresAtMs),
      });
    }
  }
  record.policy = null;
  if (record.job.terms.tier === 3) {
    const p = await api.query.market.policies(record.job.terms.policy);
    if (p.isSome) record.policy = policyRecord(record.job.terms.policy, p.unwrap());
  }
  return record;
}

/** The replay input of the WASM verifier (`replay::ReplayInput`) for a job record. */
export function replayInput(record) {
  const j = record.job;
  const s = record.settlement;
  return {
    job_id: j.id,
    spec_hash: j.specHash,
    tier: j.terms.tier,
    k: j.terms.k ?? null,
    policy_id: j.terms.policy ?? null,
    policy_document: record.policy?.document ?? null,
    status: j.status.toLowerCase(),
    price: j.price.toString(),
    // Each receipt is checked against the key its provider was bound under.
    providers: record.providers.map((p) => {
      const i = record.binding?.providers.indexOf(p.account) ?? -1;
      return { account: p.accountHex, signing_key: i >= 0 ? record.binding.keys[i] : p.signingKey };
    }),
    receipts: record.receipts.map((r) => ({
      provider: r.providerHex,
      body: r.body,
      signature: r.signature,
      digest: r.digest,
      result_commitment: r.resultCommitment,
      evidence_digest: r.evidenceDigest,
    })),
    attestations: record.attestations.map((a) => ({
      digest: a.digest,
      evidence: a.evidence,
      key: a.key,
      policy: a.policy,
      verified_at_ms: a.verifiedAtMs,
    })),
    settlement: !s
      ? null
      : s.paid
        ? {
            paid: {
              result_commitment: s.paid.resultCommitment,
              payees: s.paid.payees.map((p) => ({ account: p.accountHex, amount: p.amount.toString() })),
            },
          }
        : { refunded: { amount: s.refunded.amount.toString() } },
  };
}

export async function providers(api) {
  const [all, receipts] = await Promise.all([
    api.query.market.providers.entries(),
    api.query.market.receipts.keys(),
  ]);
  const served = new Map();
  for (const k of receipts) {
    const a = k.args[1].toString();
    if (!served.has(a)) served.set(a, []);
    served.get(a).push(hex(k.args[0]));
  }
  return all
    .filter(([, v]) => v.isSome)
    .map(([k, v]) => ({ ...provider(k.args[0].toString(), v.unwrap()), served: served.get(k.args[0].toString()) ?? [] }))
    .sort((a, b) => a.account.localeCompare(b.account));
}

export async function policies(api) {
  const all = await api.query.market.policies.entries();
  return all.filter(([, v]) => v.isSome).map(([k, v]) => policyRecord(hex(k.args[0]), v.unwrap()));
}

export async function policy(api, id) {
  const p = await api.query.market.policies(id);
  return p.isSome ? policyRecord(id, p.unwrap()) : null;
}

/** The market events of one block: `[{block, index, name, data}]` (data by field name). */
export async function blockEvents(api, number) {
  const hash = await api.rpc.chain.getBlockHash(number);
  const at = await api.at(hash);
  const events = await at.query.system.events();
  return events
    .filter((e) => e.event.section === 'market')
    .map((e, index) => {
      const names = e.event.data.names ?? [];
      const data = {};
      e.event.data.forEach((v, i) => {
        data[names[i] ?? String(i)] = v.toJSON();
      });
      return { block: number, hash: hash.toHex(), index, name: e.event.method, data };
    });
}

/** A block: its hash, its extrinsics (section.method, signer) and every event. */
export async function block(api, number) {
  const hash = await api.rpc.chain.getBlockHash(number);
  if (hash.isEmpty) return null;
  const [signed, at] = await Promise.all([api.rpc.chain.getBlock(hash), api.at(hash)]);
  const events = await at.query.system.events();
  return {
    number,
    hash: hash.toHex(),
    parent: signed.block.header.parentHash.toHex(),
    extrinsics: signed.block.extrinsics.map((x) => ({
      call: `${x.method.section}.${x.method.method}`,
      signer: x.isSigned ? x.signer.toString() : null,
    })),
    events: events.map((e) => ({
      name: `${e.event.section}.${e.event.method}`,
      data: JSON.stringify(e.event.data.toJSON()),
    })),
  };
}

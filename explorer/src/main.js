// The Sigil market explorer: views over one node's market (hash routes), live on new blocks.
//   #/                 the market: jobs by status, escrow and payments in MINT
//   #/job/<id>         a job: terms, binding, receipts, settlement, events; "Replay this job"
//   #/providers        every provider; #/provider/<account> one provider
//   #/policies         every policy; #/policy/<id> one policy, every rule in words
//   #/block/<number>   a block's extrinsics and events
//   #/verify           dropped files (a receipt and its bundle, or a bundle) checked offline
// Chain data and dropped files are untrusted: everything is rendered as text, never as markup.
import * as chain from './chain.js';
import * as verify from './verify.js';
import { rules } from './words.js';

const NODE = document.querySelector('meta[name="sigil-node"]')?.content ?? 'ws://127.0.0.1:9944';
const main = document.getElementById('main');
const status = document.getElementById('node-status');
let api = null;
let decimals = 12;
let unit = 'MINT';
let head = 0;
const events = new Map(); // job id -> [event]
const scanned = new Set(); // block numbers whose events are indexed
const EVENT_SCAN_BLOCKS = 2000;

// ---- DOM helpers: text only ----
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const short = (x) => (typeof x === 'string' && x.length > 20 ? `${x.slice(0, 10)}…${x.slice(-6)}` : String(x));
const link = (href, label, attrs = {}) => h('a', { href, ...attrs }, label);
const jobLink = (id) => link(`#/job/${id}`, short(id), { title: id, class: 'mono' });
const accountLink = (a) => link(`#/provider/${a}`, short(a), { title: a, class: 'mono' });
const blockLink = (n) => link(`#/block/${n}`, `#${n}`);
const policyLink = (id) => link(`#/policy/${id}`, short(id), { title: id, class: 'mono' });

export function mint(planck) {
  const p = BigInt(planck);
  const base = 10n ** BigInt(decimals);
  const neg = p < 0n;
  const a = neg ? -p : p;
  const whole = a / base;
  let frac = (a % base).toString().padStart(decimals, '0').replace(/0+$/, '');
  if (frac.length > 4) frac = frac.slice(0, 4);
  return `${neg ? '−' : ''}${whole}${frac ? `.${frac}` : ''} ${unit}`;
}
const when = (ms) => (ms === null ? 'never' : ms ? new Date(ms).toISOString().replace('.000Z', 'Z') : '—');
const tierName = (t) => ({ 1: 'tier 1 (signed)', 2: 'tier 2 (quorum)', 3: 'tier 3 (attested)' })[t] ?? `tier ${t}`;

function stage(job) {
  if (job.status === 'Settled' || job.status === 'Refunded') return job.status.toLowerCase();
  if (job.receipts > 0) return 'receipt';
  return job.status.toLowerCase();
}

function dl(pairs) {
  return h('dl', {}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

function table(caption, head, rows, attrs = {}) {
  // Each cell names its column: on a phone, rows are shown as cards (style.css).
  for (const row of rows) [...row.children].forEach((td, i) => td.setAttribute('data-label', head[i] ?? ''));
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      attrs,
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: head.length }, 'none'))),
    ),
  );
}

function show(...nodes) {
  main.replaceChildren(...nodes.flat());
}

function problem(message) {
  return h('p', { class: 'error', role: 'alert' }, message);
}

// ---- events: indexed by job from the last EVENT_SCAN_BLOCKS blocks, then live ----
async function indexBlock(n) {
  if (scanned.has(n)) return;
  scanned.add(n);
  try {
    for (const e of await chain.blockEvents(api, n)) {
      const id = e.data.jobId;
      if (typeof id !== 'string') continue;
      if (!events.has(id)) events.set(id, []);
      const list = events.get(id);
      list.push(e);
      list.sort((a, b) => a.block - b.block || a.index - b.index);
    }
  } catch {
    scanned.delete(n);
  }
}

async function indexHistory(upTo) {
  const from = Math.max(1, upTo - EVENT_SCAN_BLOCKS + 1);
  const todo = [];
  for (let n = upTo; n >= from; n--) if (!scanned.has(n)) todo.push(n);
  const workers = Array.from({ length: 4 }, async () => {
    while (todo.length) await indexBlock(todo.shift());
  });
  await Promise.all(workers);
}

// ---- views ----
async function viewMarket() {
  const jobs = await chain.market(api);
  const rows = jobs.map((j) => {
    const s = stage(j);
    const provider = j.settlement?.paid
      ? j.settlement.paid.payees.map((p) => h('div', {}, accountLink(p.account), ` +${mint(p.amount)}`))
      : j.bound
        ? j.bound.map((a) => h('div', {}, accountLink(a), ' (bound)'))
        : '—';
    const buyer = j.settlement?.refunded
      ? `${mint(j.price)} refunded`
      : j.status === 'Settled'
        ? `−${mint(j.price)} paid`
        : `${mint(j.price)} in escrow`;
    return h(
      'tr',
      { 'data-job': j.id, 'data-status': s },
      h('td', {}, jobLink(j.id)),
      h('td', {}, tierName(j.terms.tier), j.terms.tier === 2 ? ` ${j.terms.k} of ${j.terms.n}` : ''),
      h('td', {}, h('span', { class: `status status-${s}` }, s)),
      h('td', { class: 'buyer' }, h('div', {}, accountLink(j.buyer)), buyer),
      h('td', { class: 'provider' }, provider),
      h('td', {}, blockLink(j.fundedAt)),
    );
  });
  const counts = {};
  for (const j of jobs) counts[stage(j)] = (counts[stage(j)] ?? 0) + 1;
  const escrow = jobs.filter((j) => j.status === 'Funded' || j.status === 'Bound').reduce((a, j) => a + j.price, 0n);
  const paid = jobs.filter((j) => j.settlement?.paid).reduce((a, j) => a + j.price, 0n);
  show(
    h('h1', {}, 'Market'),
    h(
      'p',
      { class: 'summary', 'data-testid': 'market-summary' },
      `${jobs.length} jobs at block #${head}: `,
      ['funded', 'bound', 'receipt', 'settled', 'refunded'].map((s) => `${counts[s] ?? 0} ${s}`).join(', '),
      `. ${mint(escrow)} in escrow, ${mint(paid)} paid to providers.`,
    ),
    h('p', { class: 'legend' }, 'A job moves funded → bound (the chain picks its providers) → receipt (a provider answered) → settled (escrow paid) or refunded.'),
    table('Jobs, newest first', ['Job', 'Tier', 'Status', 'Buyer side', 'Provider side', 'Funded'], rows, { 'data-testid': 'jobs' }),
  );
}

async function viewJob(id) {
  if (!/^0x[0-9a-fA-F]{64}$/.test(id)) return show(problem(`"${id}" is not a job id (0x and 64 hex digits).`));
  const r = await chain.jobRecord(api, id);
  if (!r) return show(h('h1', {}, 'Job'), problem(`No job ${id} on this chain.`));
  const j = r.job;
  const t = j.terms;
  const evs = events.get(id) ?? [];
  const receiptRows = r.receipts.map((x) =>
    h(
      'tr',
      {},
      h('td', {}, accountLink(x.provider)),
      h('td', { class: 'mono' }, short(x.digest)),
      h('td', { class: 'mono', title: x.resultCommitment }, short(x.resultCommitment)),
      h('td', { class: 'mono' }, x.evidenceDigest ? short(x.evidenceDigest) : '—'),
      h('td', {}, blockLink(x.submittedAt)),
    ),
  );
  const s = r.settlement;
  const settlement = !s
    ? h('p', {}, 'Not settled yet.')
    : s.paid
      ? h(
          'div',
          {},
          h('p', {}, 'Paid at ', blockLink(s.at), ' for result ', h('span', { class: 'mono', title: s.paid.resultCommitment }, short(s.paid.resultCommitment)), ':'),
          h('ul', {}, s.paid.payees.map((p) => h('li', {}, accountLink(p.account), ` ${mint(p.amount)}`))),
        )
      : h('p', {}, `Refunded ${mint(s.refunded.amount)} to the buyer at `, blockLink(s.at), '.');
  const replayOut = h('div', { id: 'replay-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', id: 'replay' }, 'Replay this job');
  button.addEventListener('click', async () => {
    button.disabled = true;
    replayOut.replaceChildren(h('p', {}, 'Replaying…'));
    try {
      const fresh = await chain.jobRecord(api, id);
      const { report, ms } = await verify.replay(chain.replayInput(fresh));
      const names = new Map(fresh.receipts.map((x) => [x.providerHex.replace(/^0x/, ''), x.provider]));
      replayOut.replaceChildren(renderReplay(report, ms, names));
    } catch (e) {
      replayOut.replaceChildren(problem(`Replay failed: ${e.message ?? e}`));
    } finally {
      button.disabled = false;
    }
  });
  show(
    h('h1', {}, 'Job ', h('span', { class: 'mono wrap' }, id)),
    dl([
      ['Status', h('span', { class: `status status-${stage({ ...j, receipts: r.receipts.length })}`, 'data-testid': 'job-status' }, stage({ ...j, receipts: r.receipts.length }))],
      ['Tier', `${tierName(t.tier)}${t.tier === 2 ? `, ${t.k} of ${t.n}` : ''}`],
      t.tier === 3 && ['Policy', policyLink(t.policy), t.freshQuote ? ' (fresh quote per receipt)' : ' (attested key)'],
      ['Spec hash', h('span', { class: 'mono wrap' }, j.specHash)],
      ['Buyer', accountLink(j.buyer)],
      ['Price', mint(j.price)],
      ['Funded at', blockLink(j.fundedAt)],
      ['Deadline', blockLink(j.deadline)],
      ['Response window', `${j.responseBlocks} blocks`],
      ['Provider class', `${j.class.teeKinds.join(', ') || 'any TEE'}${j.class.gpuCount ? `, ${j.class.gpuCount} × ${j.class.gpuModel}` : ', no GPU'}`],
      ['Binding', r.binding ? h('span', {}, r.binding.providers.map((p, i) => [i ? ', ' : '', accountLink(p)]), ' at ', blockLink(r.binding.boundAt)) : 'not bound'],
    ]),
    h('h2', {}, 'Receipts'),
    table('Receipts accepted by the chain', ['Provider', 'Digest', 'Result commitment', 'Evidence', 'Block'], receiptRows),
    h('h2', {}, 'Settlement'),
    settlement,
    r.penalties.length ? [h('h2', {}, 'Penalties'), h('ul', {}, r.penalties.map((p) => h('li', {}, accountLink(p.provider), ` ${p.reason}: ${mint(p.amount)} at `, blockLink(p.at))))] : [],
    h('h2', {}, 'Events'),
    table(
      `Market events of this job (from the last ${EVENT_SCAN_BLOCKS} blocks)`,
      ['Block', 'Event', 'Data'],
      evs.map((e) => h('tr', {}, h('td', {}, blockLink(e.block)), h('td', {}, e.name), h('td', { class: 'mono small wrap' }, JSON.stringify(e.data, (k, v) => (k === 'jobId' ? undefined : v))))),
      { 'data-testid': 'events' },
    ),
    h('h2', {}, 'Verification'),
    h('p', {}, 'Replays what the chain checked, in this page, with the verifier compiled to WebAssembly: each receipt against the job, its signature, its evidence (signature chain to the pinned roots, TCB, measurement and GPUs under the job\'s policy, at the time the chain verified it) and the settlement.'),
    button,
    replayOut,
  );
}

const CHECK_NAMES = {
  'receipt-signature': 'Receipt signature and digest',
  job: 'Receipt names this job, spec, tier and provider key',
  'result-commitment': 'Result commitment',
  'evidence-binding': 'Evidence binding (digest, key, nonce, GPU evidence)',
  'signature-chain': 'Signature chain to the pinned roots',
  tcb: 'TCB against the policy',
  measurement: 'Measurement against the policy',
  gpu: 'GPU reports',
  policy: 'Policy (document, TEE kinds, other rules)',
};

// The evidence's measured boot in one line: whether the event log and the agent's own
// events replayed to the registers, how many boot events, and the agent it names.
function measuredBoot(mb) {
  if (!mb) return 'none in the evidence';
  const agent = mb.agent_digest ? `agent ${short(mb.agent_digest)}` : 'agent not measured';
  return `${mb.verified ? 'replayed to the registers' : 'did not replay'}: ${mb.events.length} boot events (${mb.covered.join(', ') || 'no register'}), ${agent}`;
}

function renderReplay(report, ms, names = new Map()) {
  if (!report || report.error) return problem(`The replay could not run: ${report?.error ?? 'no result'}`);
  const verdict = report.verified ? 'verified' : 'not verified';
  return h(
    'section',
    { 'aria-label': 'Replay result', 'data-testid': 'replay' },
    h('p', { class: `verdict ${report.verified ? 'ok' : 'bad'}`, 'data-testid': 'replay-verdict', 'data-ms': ms.toFixed(3) }, `Replay: ${verdict} (${ms.toFixed(1)} ms in this page)`),
    report.receipts.length === 0 ? h('p', {}, 'No receipts to replay.') : null,
    report.receipts.map((r) =>
      h(
        'article',
        { class: 'receipt', 'data-verified': r.verified },
        h('h3', {}, 'Receipt of ', names.has(r.provider) ? accountLink(names.get(r.provider)) : h('span', { class: 'mono' }, short(r.provider)), `: ${r.verified ? 'verified' : 'rejected'}`),
        dl([
          ['Evidence mode', r.evidence_mode ?? '—'],
          ['Policy', r.policy ?? '—'],
          ['Verified at', r.at_secs ? when(r.at_secs * 1000) : '—'],
          ['Measured boot', measuredBoot(r.claims?.evidence?.measured_boot)],
        ]),
        table(
          'Checks',
          ['Check', 'Verdict', 'Reasons'],
          r.checks.map((c) =>
            h('tr', { 'data-check': c.kind, 'data-verdict': c.verdict }, h('td', {}, CHECK_NAMES[c.kind] ?? c.kind), h('td', { class: `v-${c.verdict.replace(/[^a-z]/g, '')}` }, c.verdict), h('td', {}, c.reasons.length ? c.reasons.join('; ') : c.kind === 'gpu' && c.verdict === 'pass' && r.claims?.evidence?.gpus?.length === 0 ? 'no GPU in the evidence; the policy requires none' : '')),
          ),
        ),
        r.claims ? h('details', {}, h('summary', {}, 'Claims (what the receipt and its evidence say)'), h('pre', {}, JSON.stringify(r.claims, null, 1))) : null,
      ),
    ),
    h('h3', {}, 'Settlement'),
    report.settlement_reasons.length
      ? h('ul', { class: 'error' }, report.settlement_reasons.map((x) => h('li', {}, x)))
      : h('p', { 'data-testid': 'settlement-ok' }, 'The settlement follows from the receipts.'),
  );
}

async function viewProviders(only) {
  const all = await chain.providers(api);
  const list = only ? all.filter((p) => p.account === only) : all;
  if (only && !list.length) return show(h('h1', {}, 'Provider'), problem(`No registered provider ${only}.`));
  show(
    h('h1', {}, only ? 'Provider' : 'Providers'),
    list.map((p) =>
      h(
        'section',
        { class: 'provider-card', 'data-provider': p.account },
        h('h2', { class: 'mono wrap' }, only ? p.account : accountLink(p.account)),
        dl([
          ['Signing key', h('span', { class: 'mono wrap' }, p.signingKey)],
          p.retiring && ['Rotated-away key', h('span', {}, h('span', { class: 'mono wrap' }, p.retiring.signingKey), ` (kept for ${p.retiring.openJobs} open job${p.retiring.openJobs === 1 ? '' : 's'} bound under it)`)],
          ['Storage deposit', `${mint(p.deposit)} (returned when it deregisters)`],
          ['Tiers', p.tiers.join(', ')],
          ['TEE kinds', p.teeKinds.join(', ') || '—'],
          ['GPU model', p.gpuModel || 'none'],
          ['Offer', p.offer ? `${mint(p.offer.price)} per job, capacity ${p.offer.capacity}, bond ${mint(p.offer.bond)}` : 'no offer'],
          ['Active jobs', p.activeJobs],
          ['Registered at', blockLink(p.registeredAt)],
          ['Attested key', p.attested ? `${p.attested.tee}, verified ${when(p.attested.verifiedAtMs)}, expires ${when(p.attested.expiresAtMs)}` : 'none (tiers 1 and 2 only)'],
          p.attested && ['Measurement', h('span', { class: 'mono wrap' }, p.attested.measurement)],
          p.attested && ['Policy', policyLink(p.attested.policy)],
          p.attested && ['Evidence', h('span', { class: 'mono wrap' }, p.attested.evidenceDigest)],
          p.attested && ['Sealing key (HPKE)', p.attested.sealingKey ? h('span', { class: 'mono wrap' }, p.attested.sealingKey) : 'none (the evidence binds no sealing key)'],
          p.attested && ['GPUs', p.attested.gpuCount ? `${p.attested.gpuCount} × ${p.attested.gpuChip}, driver ${p.attested.gpuDriver}, VBIOS ${p.attested.gpuVbios}` : 'none'],
          ['Jobs served', p.served.length ? h('span', {}, p.served.map((id, i) => [i ? ', ' : '', jobLink(id)])) : 'none'],
        ]),
      ),
    ),
  );
}

async function viewPolicies() {
  const all = await chain.policies(api);
  const genesis = await verify.genesisPolicies();
  const name = (id) => genesis.find((g) => `0x${g.id}` === id)?.name;
  show(
    h('h1', {}, 'Policies'),
    h('p', {}, 'An attestation policy is a document whose id is its hash: registered once, never edited. A tier-3 job names the policy its evidence must satisfy.'),
    table(
      'Registered policies',
      ['Policy', 'Name', 'TEE kinds', 'Users', 'Registered'],
      all.map((p) => h('tr', {}, h('td', {}, policyLink(p.id)), h('td', {}, name(p.id) ?? '—'), h('td', {}, p.tees.join(', ')), h('td', {}, p.users), h('td', {}, blockLink(p.registeredAt)))),
    ),
  );
}

async function viewPolicy(id) {
  if (!/^0x[0-9a-fA-F]{64}$/.test(id)) return show(problem(`"${id}" is not a policy id.`));
  const p = await chain.policy(api, id);
  if (!p) return show(h('h1', {}, 'Policy'), problem(`No policy ${id} on this chain.`));
  const doc = await verify.policyDocument(id, p.document);
  show(
    h('h1', {}, 'Policy ', h('span', { class: 'mono wrap' }, id)),
    dl([
      ['Name', doc.name ?? '—'],
      ['Owner', p.owner ?? 'genesis'],
      ['Deposit', mint(p.deposit)],
      ['TEE kinds', p.tees.join(', ')],
      ['Key lifetime', p.keyLifetimeMs ? `${p.keyLifetimeMs / 1000} s` : 'no limit'],
      ['Pins software', p.unpinned ? `no: ${p.unpinned}` : 'yes'],
      ['In use by', `${p.users} attested key(s) and open job(s)`],
      ['Registered at', blockLink(p.registeredAt)],
    ]),
    doc.error
      ? problem(`The stored document does not verify: ${doc.error}`)
      : [
          h('h2', {}, 'Rules'),
          h('p', {}, 'The document hashes to its id. Every rule, in words:'),
          h('ul', { 'data-testid': 'rules' }, rules(doc.toml).map((r) => h('li', {}, r.words, ' ', h('code', {}, `${r.key} = ${r.value}`)))),
          h('details', {}, h('summary', {}, 'The document (canonical TOML)'), h('pre', {}, doc.toml)),
        ],
  );
}

async function viewBlock(n) {
  const num = Number(n);
  if (!Number.isSafeInteger(num) || num < 0) return show(problem(`"${n}" is not a block number.`));
  const b = await chain.block(api, num);
  if (!b) return show(problem(`No block #${num}.`));
  show(
    h('h1', {}, `Block #${num}`),
    dl([
      ['Hash', h('span', { class: 'mono wrap' }, b.hash)],
      ['Parent', num > 0 ? blockLink(num - 1) : '—'],
    ]),
    table('Extrinsics', ['Call', 'Signer'], b.extrinsics.map((x) => h('tr', {}, h('td', {}, x.call), h('td', {}, x.signer ? accountLink(x.signer) : 'inherent')))),
    table('Events', ['Event', 'Data'], b.events.map((e) => h('tr', {}, h('td', {}, e.name), h('td', { class: 'mono small wrap' }, e.data)))),
  );
}

// ---- offline verification of dropped files ----
const MAX_FILE = 16 << 20;

function viewVerify() {
  const files = {};
  const out = h('div', { id: 'verify-result', 'aria-live': 'polite' });
  const names = h('p', { 'data-testid': 'files' }, 'No files yet.');
  const policyIn = h('textarea', { id: 'policy', rows: 4, spellcheck: 'false', placeholder: 'empty: the strict default policy; or a genesis policy name (sigil.simulated.v1); or a policy in TOML' });
  const simulated = h('input', { type: 'checkbox', id: 'allow-simulated' });
  const at = h('input', { type: 'text', id: 'at', value: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), inputmode: 'text', 'aria-describedby': 'at-help' });
  const key = h('input', { type: 'text', id: 'agent-key', placeholder: '64 hex digits (bundle only, optional)' });
  const describe = () => {
    const parts = Object.entries(files).filter(([, f]) => f).map(([k, f]) => `${k}: ${f.name} (${f.bytes.length} bytes)`);
    names.textContent = parts.length ? parts.join('; ') : 'No files yet.';
  };
  const take = async (list, as) => {
    for (const f of list) {
      if (f.size > MAX_FILE) {
        out.replaceChildren(problem(`${f.name} is larger than 16 MiB: not read.`));
        continue;
      }
      const bytes = new Uint8Array(await f.arrayBuffer());
      files[as ?? role(f.name, bytes)] = { name: f.name, bytes };
    }
    describe();
  };
  const zone = h('div', { class: 'drop', id: 'drop', tabindex: 0, role: 'region', 'aria-label': 'Drop files here' },
    'Drop files here, or choose them below: a receipt and its evidence bundle (named *receipt* and *bundle*, as `sigil job receipt` writes them); a bundle alone; an SEV-SNP report (*report*) with its VCEK or VLEK (*vcek*, *vlek*) and optionally *ask*, *ark*, *crl*; or a TDX quote (*quote*) with its collateral bundle (*.json).');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    take([...(e.dataTransfer?.files ?? [])]);
  });
  const receiptIn = h('input', { type: 'file', id: 'receipt-file', onchange: (e) => take([...e.target.files], 'receipt') });
  const bundleIn = h('input', { type: 'file', id: 'bundle-file', onchange: (e) => take([...e.target.files], 'bundle') });
  const otherIn = h('input', { type: 'file', id: 'other-files', multiple: true, onchange: (e) => take([...e.target.files]) });
  const run = h('button', { type: 'button', id: 'check' }, 'Check');
  run.addEventListener('click', async () => {
    const t = Date.parse(at.value);
    if (!Number.isFinite(t)) return out.replaceChildren(problem(`"${at.value}" is not a time (RFC 3339, e.g. 2026-01-01T00:00:00Z).`));
    const secs = Math.floor(t / 1000);
    const f = (k) => files[k]?.bytes;
    let what;
    let run;
    if (f('receipt')) {
      what = 'receipt';
      run = () => verify.checkReceipt(f('receipt'), f('bundle'), policyIn.value, simulated.checked, secs);
    } else if (f('bundle')) {
      what = 'bundle';
      run = () => verify.checkBundle(f('bundle'), key.value, '', policyIn.value, simulated.checked, secs);
    } else if (f('report')) {
      if (!f('vek')) return out.replaceChildren(problem('An SEV-SNP report needs its VCEK or VLEK (a file named *vcek* or *vlek*).'));
      what = 'SEV-SNP report';
      const d = (k) => (f(k) ? verify.der(f(k)) : undefined);
      run = () => verify.checkSnp(f('report'), d('vek'), d('ask'), d('ark'), d('crl'), policyIn.value, secs);
    } else if (f('quote')) {
      if (!f('collateral')) return out.replaceChildren(problem('A TDX quote needs its collateral bundle (a *.json file).'));
      what = 'TDX quote';
      run = () => verify.checkTdx(f('quote'), f('collateral'), policyIn.value, secs);
    } else {
      return out.replaceChildren(problem('Drop or choose a receipt, a bundle, an SEV-SNP report or a TDX quote first.'));
    }
    out.replaceChildren(h('p', {}, 'Checking…'));
    const { result, ms } = await run();
    out.replaceChildren(renderEnvelope(result, ms, what));
  });
  show(
    h('h1', {}, 'Verify files'),
    h('p', {}, 'Checks a receipt (with its evidence bundle for tier 3), an evidence bundle on its own, an SEV-SNP report or a TDX quote, in this page, exactly as ', h('code', {}, 'sigil-verify receipt'), ', ', h('code', {}, 'bundle'), ', ', h('code', {}, 'snp'), ' and ', h('code', {}, 'tdx'), ' do. Nothing leaves the page.'),
    zone,
    h('div', { class: 'form' },
      h('label', { for: 'receipt-file' }, 'Receipt (SCALE SignedReceipt)'), receiptIn,
      h('label', { for: 'bundle-file' }, 'Evidence bundle (SCALE EvidenceBundle)'), bundleIn,
      h('label', { for: 'other-files' }, 'Other files (report, certificates, quote, collateral)'), otherIn,
      h('label', { for: 'policy' }, 'Policy'), policyIn,
      h('label', { for: 'at' }, 'Verification time'), at, h('small', { id: 'at-help' }, 'RFC 3339, UTC'),
      h('label', { for: 'agent-key' }, 'Agent key the bundle must bind'), key,
      h('label', { class: 'check' }, simulated, ' Accept simulated evidence (testing only; overrides the policy)'),
    ),
    names,
    run,
    out,
  );
}

// What a dropped file is, from its name (then its size).
function role(name, bytes) {
  const n = name.toLowerCase();
  const rules = [
    [/receipt/, 'receipt'], [/bundle/, 'bundle'], [/quote/, 'quote'], [/collateral|\.json$/, 'collateral'],
    [/vcek|vlek/, 'vek'], [/ask|asvk/, 'ask'], [/ark/, 'ark'], [/crl/, 'crl'], [/report/, 'report'],
  ];
  for (const [re, r] of rules) if (re.test(n)) return r;
  return bytes.length <= 4096 + 16 ? 'receipt' : 'bundle';
}

function renderEnvelope(r, ms, what) {
  if (!r || r.error) return problem(`The ${what} could not be checked: ${r?.error ?? 'no result'}`);
  return h(
    'section',
    { 'data-testid': 'verify', 'aria-label': 'Verification result' },
    h('p', { class: `verdict ${r.verdict === 'accepted' ? 'ok' : 'bad'}`, 'data-testid': 'verdict', 'data-verdict': r.verdict, 'data-ms': ms.toFixed(3) }, `${what}: ${r.verdict} (${ms.toFixed(1)} ms)`),
    r.reasons.length ? h('ul', { class: 'error', 'data-testid': 'reasons' }, r.reasons.map((x) => h('li', {}, x))) : null,
    r.claims ? h('details', { open: true }, h('summary', {}, 'Claims'), h('pre', {}, JSON.stringify(r.claims, null, 1))) : null,
  );
}

// ---- routing and liveness ----
let rendering = Promise.resolve();
let pending = false;

function route() {
  const [, view = '', arg = ''] = decodeURIComponent(location.hash.replace(/^#/, '')).split('/');
  return { view, arg };
}

async function render(fromNav) {
  const { view, arg } = route();
  if (view === 'verify') {
    // Built once per visit: files already dropped survive the node connecting.
    if (fromNav && document.body.dataset.view !== location.hash) viewVerify();
    document.body.dataset.view = location.hash;
    document.body.dataset.ready = 'true';
    return;
  }
  if (!api) {
    if (fromNav) show(h('p', {}, `Connecting to ${NODE}…`));
    return;
  }
  // A live refresh never replaces a replay result or a page being read.
  if (!fromNav && (view === 'job' || view === 'block' || view === 'policy')) return;
  try {
    if (view === '' || view === 'market') await viewMarket();
    else if (view === 'job') await viewJob(arg);
    else if (view === 'providers') await viewProviders();
    else if (view === 'provider') await viewProviders(arg);
    else if (view === 'policies') await viewPolicies();
    else if (view === 'policy') await viewPolicy(arg);
    else if (view === 'block') await viewBlock(arg);
    else show(problem(`No view "${view}".`));
  } catch (e) {
    show(problem(`Could not read the chain: ${e.message ?? e}`));
  } finally {
    document.body.dataset.view = location.hash || '#/';
    document.body.dataset.ready = 'true';
  }
}

function refresh(fromNav) {
  if (!fromNav && pending) return;
  pending = true;
  rendering = rendering.then(async () => {
    pending = false;
    await render(fromNav);
  });
}

window.addEventListener('hashchange', () => {
  document.body.dataset.ready = 'false';
  document.body.dataset.view = '';
  refresh(true);
  main.focus({ preventScroll: true });
});

async function start() {
  refresh(true);
  status.textContent = `connecting to ${NODE}…`;
  try {
    api = await chain.connect(NODE, (s) => {
      status.textContent = s === 'connected' ? `node ${NODE}: block #${head}` : `node ${NODE}: ${s}`;
    });
  } catch (e) {
    status.textContent = `node ${NODE}: unreachable`;
    if (route().view !== 'verify') show(problem(`Cannot reach the node at ${NODE}: ${e.message ?? e}`));
    return;
  }
  // MINT and 12 decimals unless the chain's properties say otherwise.
  const props = api.registry.getChainProperties();
  if (props?.tokenDecimals?.isSome) decimals = props.tokenDecimals.unwrap()[0]?.toNumber() ?? decimals;
  if (props?.tokenSymbol?.isSome) unit = props.tokenSymbol.unwrap()[0]?.toString() ?? unit;
  head = (await api.rpc.chain.getHeader()).number.toNumber();
  status.textContent = `node ${NODE}: block #${head}`;
  await indexHistory(head);
  document.body.dataset.events = 'indexed';
  refresh(true);
  await api.rpc.chain.subscribeNewHeads(async (header) => {
    const n = header.number.toNumber();
    for (let b = head + 1; b <= n; b++) await indexBlock(b);
    head = Math.max(head, n);
    status.textContent = `node ${NODE}: block #${head}`;
    refresh(false);
  });
}

start();

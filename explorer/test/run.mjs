#!/usr/bin/env node
// The explorer's browser tests, against the real local market.
//
// Starts `scripts/market.sh --keep-running` (the local chain, three agents, jobs of tiers 3, 1
// and 2 funded, run, settled and replayed, the explorer served), waits for its jobs to settle,
// then drives the explorer in headless Chromium (Debian's /usr/bin/chromium, via playwright-core):
//   - the market view lists the market's jobs, settled, with the buyer's and providers' MINT;
//   - the job, provider, policy and block views show the on-chain records;
//   - "Replay this job" on the tier-3 job verifies every check in the page;
//   - the tier-3 receipt and bundle dropped on the page get the verdict, reasons and claims of
//     `sigil-verify receipt` (run here), and so does a tampered copy of the receipt (rejected);
//   - no request leaves for anywhere but the page's origin and the node, and the
//     Content-Security-Policy is never violated;
// then stops the market and checks that it exited 0. Screenshots of each view, the market's
// log and the measured figures go to explorer/test-results/.
//
// Usage: npm test (from explorer/)
//   SIGIL_EXPLORER_STATE=path/state.json SIGIL_EXPLORER_URL=http://...  test an already running
//   market (`scripts/market.sh --keep-running` prints both) instead of starting one.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync, createWriteStream, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const explorer = resolve(here, '..');
const root = resolve(explorer, '..');
const results = join(explorer, 'test-results');
mkdirSync(results, { recursive: true });
const CHROMIUM = process.env.SIGIL_CHROMIUM ?? '/usr/bin/chromium';
const MINT = 10n ** 12n;

const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

// ---- the market ----
let market = null;
let marketExit = null;

async function startMarket() {
  if (process.env.SIGIL_EXPLORER_STATE && process.env.SIGIL_EXPLORER_URL) {
    return { state: JSON.parse(readFileSync(process.env.SIGIL_EXPLORER_STATE, 'utf8')), url: process.env.SIGIL_EXPLORER_URL };
  }
  const env = {
    ...process.env,
    SIGIL_CHAIN_PORT: process.env.SIGIL_CHAIN_PORT ?? String(await freePort()),
    SIGIL_EXPLORER_PORT: String(await freePort()),
  };
  const log = createWriteStream(join(results, 'market.log'));
  market = spawn('bash', [join(root, 'scripts/market.sh'), '--keep-running'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  marketExit = new Promise((ok) => market.on('exit', (code, signal) => ok({ code, signal })));
  let out = '';
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('market.sh did not settle its jobs within 40 minutes')), 40 * 60 * 1000);
    const take = (chunk) => {
      const s = chunk.toString();
      process.stdout.write(s);
      log.write(s);
      out += s;
      const st = /^market: state (.+)$/m.exec(out);
      const url = /^explorer: (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(out);
      if (st && url) {
        clearTimeout(timer);
        ok({ state: JSON.parse(readFileSync(st[1].trim(), 'utf8')), url: url[1] });
      }
    };
    market.stdout.on('data', take);
    market.stderr.on('data', (c) => {
      process.stderr.write(c);
      log.write(c);
    });
    marketExit.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`market.sh exited (${code ?? signal}) before its jobs settled; see test-results/market.log`));
    });
  });
}

async function stopMarket() {
  if (!market) return true;
  if (market.exitCode === null) market.kill('SIGTERM');
  const { code, signal } = await marketExit;
  console.log(`market.sh stopped: exit ${code ?? signal}`);
  return code === 0;
}

// ---- a tiny harness ----
const tests = [];
const test = (name, fn) => tests.push({ name, fn });
function assert(cond, message) {
  if (!cond) throw new Error(message);
}
function eq(a, b, message) {
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  if (ja !== jb) throw new Error(`${message}:\n  page: ${ja}\n  want: ${jb}`);
}
const figures = {};

// ---- the tests ----
let ctx; // { page, url, state, origin, node }

// Opens a view by its route, as a link would, and waits until it has rendered.
async function goto(hash) {
  const { page, url } = ctx;
  await page.goto(`${url}#${hash}`);
  await page.waitForFunction((h) => document.body.dataset.ready === 'true' && document.body.dataset.view === h, `#${hash}`, { timeout: 60000 });
}

async function shot(name) {
  await ctx.page.screenshot({ path: join(results, `${name}.png`), fullPage: true });
}

function cli(args) {
  const bin = join(ctx.state.bin, 'sigil-verify');
  try {
    return { code: 0, out: JSON.parse(execFileSync(bin, args, { encoding: 'utf8' })) };
  } catch (e) {
    if (typeof e.status === 'number' && e.stdout) return { code: e.status, out: JSON.parse(e.stdout) };
    throw e;
  }
}

async function dropFiles(files) {
  // A real drop event on the drop zone, carrying the files.
  await ctx.page.evaluate((list) => {
    const dt = new DataTransfer();
    for (const f of list) dt.items.add(new File([new Uint8Array(f.bytes)], f.name));
    const zone = document.getElementById('drop');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, files.map((f) => ({ name: f.name, bytes: [...f.bytes] })));
}

// Clicks Check again n times; the in-page times (ms) of each run.
async function recheck(n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    await ctx.page.evaluate(() => document.getElementById('verify-result').replaceChildren());
    await ctx.page.click('#check');
    await ctx.page.waitForSelector('[data-testid="verdict"]', { timeout: 60000 });
    times.push(Number(await ctx.page.getAttribute('[data-testid="verdict"]', 'data-ms')));
  }
  return times;
}

async function verifyInPage(files, at, allowSimulated) {
  const { page } = ctx;
  // A fresh page: no files from an earlier check.
  await page.goto('about:blank');
  await goto('/verify');
  await page.waitForSelector('#drop');
  await dropFiles(files);
  await page.waitForFunction((n) => document.querySelector('[data-testid="files"]').textContent.split(';').length === n, files.length);
  await page.fill('#at', at);
  if (allowSimulated) await page.check('#allow-simulated');
  await page.click('#check');
  await page.waitForSelector('[data-testid="verdict"], #verify-result .error', { timeout: 60000 });
  return page.evaluate(() => {
    const v = document.querySelector('[data-testid="verdict"]');
    const claims = document.querySelector('[data-testid="verify"] pre');
    return {
      verdict: v ? v.dataset.verdict : null,
      ms: v ? Number(v.dataset.ms) : null,
      reasons: [...document.querySelectorAll('[data-testid="reasons"] li')].map((li) => li.textContent),
      claims: claims ? JSON.parse(claims.textContent) : null,
      error: document.querySelector('#verify-result .error')?.textContent ?? null,
    };
  });
}

test('the market view shows the market\'s jobs, settled, with MINT on both sides', async () => {
  const { page, state } = ctx;
  await goto('/');
  const { jobs, accounts } = state;
  const want = [
    { id: jobs['tier-3'], tier: 'tier 3', paid: [[accounts.charlie, 5n * MINT]], price: 5n * MINT },
    { id: jobs['tier-1'], tier: 'tier 1', paid: [[accounts.charlie, 5n * MINT]], price: 5n * MINT },
    { id: jobs['tier-2'], tier: 'tier 2', paid: [[accounts.charlie, 3n * MINT], [accounts.dave, 3n * MINT]], price: 6n * MINT },
  ];
  for (const w of want) {
    const row = page.locator(`tr[data-job="${w.id}"]`);
    assert((await row.count()) === 1, `job ${w.id} is not listed`);
    eq(await row.getAttribute('data-status'), 'settled', `status of ${w.tier} job`);
    const cells = await row.locator('td').allInnerTexts();
    assert(cells[1].startsWith(w.tier), `${w.id}: tier cell "${cells[1]}"`);
    assert(cells[3].includes(`−${w.price / MINT} MINT paid`), `${w.tier} buyer side "${cells[3]}"`);
    for (const [account, amount] of w.paid) {
      const shortName = `${account.slice(0, 10)}…${account.slice(-6)}`;
      assert(cells[4].includes(`${shortName} +${amount / MINT} MINT`), `${w.tier} provider side "${cells[4]}" lacks ${shortName} +${amount / MINT} MINT`);
    }
  }
  const summary = await page.textContent('[data-testid="market-summary"]');
  assert(/0 funded, 0 bound, 0 receipt, [3-9]\d* settled/.test(summary), `summary "${summary}"`);
  await shot('market');
  await page.setViewportSize({ width: 390, height: 844 });
  await goto('/');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `the page is ${overflow}px wider than a phone screen`);
  await shot('market-phone');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('the job view shows the tier-3 job\'s record and events with block links', async () => {
  const { page, state } = ctx;
  await goto(`/job/${state.jobs['tier-3']}`);
  await page.waitForFunction(() => document.body.dataset.events === 'indexed');
  await goto(`/job/${state.jobs['tier-3']}`);
  eq(await page.textContent('[data-testid="job-status"]'), 'settled', 'job status');
  const text = await page.textContent('main');
  for (const s of ['tier 3 (attested)', state.policy.slice(0, 10), '5 MINT', 'Paid at']) assert(text.includes(s), `job view lacks "${s}"`);
  const events = await page.locator('[data-testid="events"] tbody tr').allInnerTexts();
  for (const e of ['JobFunded', 'JobBound', 'JobSettled']) assert(events.some((r) => r.includes(e)), `no ${e} event: ${events.join(' | ')}`);
  const blockHref = await page.locator('[data-testid="events"] tbody tr a').first().getAttribute('href');
  assert(/^#\/block\/\d+$/.test(blockHref), `event block link ${blockHref}`);
  await shot('job');
  await goto(blockHref.slice(1));
  assert((await page.textContent('main')).includes('market.'), 'the block view lists no market event');
  await shot('block');
});

test('"Replay this job" verifies the tier-3 job in the page', async () => {
  const { page, state } = ctx;
  await goto(`/job/${state.jobs['tier-3']}`);
  const runs = [];
  for (let i = 0; i < 10; i++) {
    await page.click('#replay');
    await page.waitForSelector('[data-testid="replay-verdict"]', { timeout: 60000 });
    runs.push(Number(await page.getAttribute('[data-testid="replay-verdict"]', 'data-ms')));
    if (i === 0) {
      eq(await page.textContent('[data-testid="replay-verdict"]').then((t) => t.split(' (')[0]), 'Replay: verified', 'replay verdict');
      const checks = await page.locator('[data-check]').evaluateAll((rows) => rows.map((r) => [r.dataset.check, r.dataset.verdict]));
      assert(checks.length === 9, `${checks.length} checks`);
      for (const [k, v] of checks) assert(v === 'pass', `check ${k}: ${v}`);
      assert(await page.isVisible('[data-testid="settlement-ok"]'), 'the settlement was not verified');
      await page.click('details summary');
      await shot('replay');
    }
    await page.evaluate(() => document.getElementById('replay-result').replaceChildren());
  }
  // Native: `sigil audit replay` of the same job (reads the chain, then replays), best of 5.
  const sigil = join(state.bin, 'sigil');
  const native = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    const out = JSON.parse(execFileSync(sigil, ['--url', state.url, 'audit', 'replay', state.jobs['tier-3']], { encoding: 'utf8' }));
    native.push(Number(process.hrtime.bigint() - t0) / 1e6);
    assert(out.verified === true, 'sigil audit replay does not verify the job');
  }
  figures.tier3_job_replay = { page_ms: runs, page_best_ms: Math.min(...runs), sigil_audit_replay_process_ms: native, sigil_audit_replay_best_ms: Math.min(...native) };
});

test('the provider and policy views show the attested key and every rule', async () => {
  const { page, state } = ctx;
  await goto(`/provider/${state.accounts.charlie}`);
  const text = await page.textContent('main');
  for (const s of ['Simulated', 'Measurement', 'per job, capacity 2', 'Jobs served', 'Storage deposit', '1 MINT (returned when it deregisters)']) assert(text.includes(s), `provider view lacks "${s}"`);
  assert((await page.locator(`a[href="#/job/${state.jobs['tier-3']}"]`).count()) === 1, 'the tier-3 job is not among the jobs served');
  await shot('provider');
  await goto('/providers');
  await shot('providers');
  await goto(`/policy/${state.policy}`);
  const rules = await page.locator('[data-testid="rules"] li').allInnerTexts();
  assert(rules.some((r) => r.startsWith('Evidence from the agent simulator is accepted')), `rules: ${rules.join(' | ')}`);
  assert(rules.some((r) => r.startsWith("The simulator's measurement")), 'the pinned measurement is not in words');
  await shot('policy');
  await goto('/policies');
  await shot('policies');
});

test('the tier-3 receipt and bundle dropped on the page: the verdict, reasons and claims of sigil-verify', async () => {
  const { state } = ctx;
  const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const receipt = readFileSync(state.tier3.receipt);
  const bundle = readFileSync(state.tier3.bundle);
  const page = await verifyInPage([{ name: 'receipt.bin', bytes: receipt }, { name: 'bundle.bin', bytes: bundle }], at, true);
  await shot('verify-accepted');
  const t0 = process.hrtime.bigint();
  const native = cli(['receipt', '--receipt', state.tier3.receipt, '--bundle', state.tier3.bundle, '--at', at, '--allow-simulated', '--format', 'json']);
  const nativeMs = Number(process.hrtime.bigint() - t0) / 1e6;
  eq(native.code, 0, 'sigil-verify exit status');
  eq(page.verdict, native.out.verdict, 'verdict');
  eq(page.reasons, native.out.reasons, 'reasons');
  eq(page.claims, native.out.claims, 'claims');
  const times = [page.ms, ...(await recheck(9))];
  figures.tier3_receipt_check = { page_ms: times, page_best_ms: Math.min(...times), sigil_verify_process_ms: nativeMs };
});

test('a tampered receipt dropped on the page fails with the reason sigil-verify gives', async () => {
  const { state } = ctx;
  const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const receipt = Buffer.from(readFileSync(state.tier3.receipt));
  // Flip a bit of the receipt's job id (the body is signed: the signature must now fail).
  receipt[8] ^= 0x01;
  const tampered = join(results, 'tampered-receipt.bin');
  writeFileSync(tampered, receipt);
  const page = await verifyInPage([{ name: 'tampered-receipt.bin', bytes: receipt }, { name: 'bundle.bin', bytes: readFileSync(state.tier3.bundle) }], at, true);
  await shot('verify-tampered');
  const native = cli(['receipt', '--receipt', tampered, '--bundle', state.tier3.bundle, '--at', at, '--allow-simulated', '--format', 'json']);
  eq(native.code, 1, 'sigil-verify exit status (rejected)');
  eq(page.verdict, 'rejected', 'page verdict');
  assert(page.reasons.length > 0, 'the page gives no reason');
  eq(page.reasons, native.out.reasons, 'reasons');
});

// Real evidence from the shared vectors, dropped on the page: the CLI's verdict, reasons and
// claims, and the in-page time (best of 10) against the CLI's (best of 5).
const VECTORS = process.env.SIGIL_VECTORS ?? resolve(root, '../shared/vectors');
async function vectorCase(name, dir, files, at, cliArgs) {
  const list = files.map((f) => ({ name: f, bytes: readFileSync(join(VECTORS, dir, f)) }));
  const page = await verifyInPage(list, at, false);
  const times = [page.ms, ...(await recheck(9))];
  await shot(`verify-${name}`);
  const native = [];
  let out;
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    out = cli([...cliArgs.map((a) => (a.startsWith('@') ? join(VECTORS, dir, a.slice(1)) : a)), '--at', at, '--format', 'json']);
    native.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  eq(page.verdict, out.out.verdict, `${name}: verdict`);
  eq(page.reasons, out.out.reasons, `${name}: reasons`);
  eq(page.claims, out.out.claims, `${name}: claims`);
  figures[name] = { verdict: page.verdict, page_ms: times, page_best_ms: Math.min(...times), sigil_verify_process_ms: native, sigil_verify_best_ms: Math.min(...native) };
}

test('an SEV-SNP report from the vectors, dropped on the page: sigil-verify snp\'s verdict, reasons and claims', async () => {
  await vectorCase('snp_milan_v3', 'snp/milan-v3-oak-oc-release', ['report.bin', 'vcek.der', 'ask.pem', 'ark.pem'], '2025-02-14T21:21:54Z',
    ['snp', '--report', '@report.bin', '--cert', '@vcek.der', '--ask', '@ask.pem', '--ark', '@ark.pem']);
});

test('a TDX quote from the vectors, dropped on the page: sigil-verify tdx\'s verdict, reasons and claims', async () => {
  await vectorCase('tdx_v4', 'tdx/tdx-v4-dcap-qvl-sample', ['quote.bin', 'collateral.json'], '2025-06-20T10:32:27Z',
    ['tdx', '--quote', '@quote.bin', '--collateral', '@collateral.json']);
});

test('the market view follows a new job live: funded by the CLI, it appears bound with its escrow', async () => {
  const { page, state } = ctx;
  await goto('/');
  const sigil = (...args) => execFileSync(join(state.bin, 'sigil'), ['--url', state.url, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const spec = join(results, 'live-spec.pb');
  const job = JSON.parse(sigil('job', 'new', '--tier', '1', '--buyer-suri', '//Bob', '--out', spec, '--', '/bin/true')).job_id;
  // The local chain sometimes cannot answer for the block it just announced ("RPC failure while
  // reading the account nonce"): nothing was submitted then, so funding is tried again.
  for (let attempt = 1; ; attempt++) {
    try {
      sigil('buyer', 'fund', '--suri', '//Bob', '--job', job, '--spec', spec, '--tier', '1', '--price', '2', '--response-blocks', '50');
      break;
    } catch (e) {
      if (attempt >= 3 || !String(e.stderr ?? '').includes('reading the account nonce')) throw e;
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }
  // No navigation: the view refreshes on the new blocks.
  await page.waitForSelector(`tr[data-job="${job}"][data-status="bound"]`, { timeout: 30000 });
  const cells = await page.locator(`tr[data-job="${job}"] td`).allInnerTexts();
  assert(cells[3].includes('2 MINT in escrow'), `buyer side "${cells[3]}"`);
  assert(cells[4].includes('(bound)'), `provider side "${cells[4]}"`);
  const summary = await page.textContent('[data-testid="market-summary"]');
  assert(summary.includes('1 bound') && summary.includes('2 MINT in escrow'), `summary "${summary}"`);
  await shot('market-live');
});

test('garbage dropped on the page is rejected with a reason, and the page keeps working', async () => {
  const page = await verifyInPage([{ name: 'receipt.bin', bytes: Buffer.from('not a receipt at all') }], '2026-01-01T00:00:00Z', false);
  eq(page.verdict, 'rejected', 'verdict');
  assert(page.reasons.length > 0 && page.reasons[0].length > 0, 'no reason');
  const bad = await verifyInPage([{ name: 'receipt.bin', bytes: Buffer.from([0]) }], 'yesterday', false);
  assert(bad.error && bad.error.includes('is not a time'), `bad time: ${JSON.stringify(bad)}`);
  await goto('/job/0x1234');
  assert((await ctx.page.textContent('main')).includes('is not a job id'), 'a bad job id is not refused');
  await goto(`/job/0x${'ab'.repeat(32)}`);
  assert((await ctx.page.textContent('main')).includes('No job'), 'a missing job is not reported');
});

// ---- run ----
async function main() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  const { state, url } = await startMarket();
  const nodeHttp = state.url.replace(/^ws/, 'http');
  const origin = new URL(url).origin;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // A fresh profile per run (launch() uses a new temporary --user-data-dir).
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const outside = [];
  const violations = [];
  const pageErrors = [];
  page.on('request', (r) => {
    const u = r.url();
    if (!(u.startsWith(origin) || u.startsWith(state.url) || u.startsWith(nodeHttp) || u.startsWith('data:') || u.startsWith('blob:'))) outside.push(u);
  });
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`Refused to (CSP) ${e.violatedDirective} ${e.blockedURI}`)));
  ctx = { page, url, state };
  let failed = 0;
  for (const t of tests) {
    const t0 = Date.now();
    try {
      await t.fn();
      console.log(`ok - ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed += 1;
      console.log(`not ok - ${t.name}\n  ${String(e.stack ?? e).split('\n').join('\n  ')}`);
      await shot(`failed-${tests.indexOf(t)}`).catch(() => {});
    }
  }
  const policy = [
    ['no request left for anywhere but the page and the node', outside],
    ['no Content-Security-Policy violation', violations],
    ['no uncaught error in the page', pageErrors],
  ];
  for (const [name, list] of policy) {
    if (list.length) {
      failed += 1;
      console.log(`not ok - ${name}: ${list.slice(0, 5).join(' | ')}`);
    } else console.log(`ok - ${name}`);
  }
  await browser.close();
  // Sizes: the page bundle (everything in dist/) and the WASM module.
  const dist = join(explorer, 'dist');
  const du = (dir) => Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
  const wasm = execFileSync('find', [join(dist, 'assets'), '-name', '*.wasm'], { encoding: 'utf8' }).trim().split('\n')[0];
  figures.sizes = { dist_bytes: du(dist), wasm_bytes: du(wasm), js_bytes: Number(execFileSync('sh', ['-c', `cat ${join(dist, 'assets')}/*.js | wc -c`], { encoding: 'utf8' })) };
  writeFileSync(join(results, 'figures.json'), JSON.stringify(figures, null, 1));
  console.log(`figures: ${JSON.stringify(figures)}`);
  if (!(await stopMarket())) {
    failed += 1;
    console.log('not ok - scripts/market.sh exited non-zero');
  } else if (market) console.log('ok - scripts/market.sh exited 0');
  console.log(failed ? `explorer tests: ${failed} failed` : 'explorer tests: all passed');
  process.exit(failed ? 1 : 0);
}

main().catch(async (e) => {
  console.error(`explorer tests: ${e.message ?? e}`);
  await stopMarket().catch(() => {});
  process.exit(1);
});

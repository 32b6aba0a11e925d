#!/usr/bin/env node
// `npm run bench:portal`: the portal's budgets, measured on a throwaway stack.
//
//   1. The deliveries page's queries at 100,000 deliveries of one company (plus 20 other
//      companies with 10,000 each around it): every query the page sends, through the real
//      client module (dist/), supabase-js, the gateway and PostgREST, each filter and depth
//      REPEATS times; p50/p95/p99. Then EXPLAIN ANALYZE of the same SQL shapes, to show the
//      plans (index range scans that stop after the page).
//   2. The portal page's JavaScript, gzipped (from the build).
//   3. First paint and "data on screen" of the deliveries and endpoints pages in headless
//      Chromium on this local stack, each in a fresh browser context.
// Writes bench/RESULTS-portal.md; with --screenshot also docs/portal.png (the README's picture:
// the benchmark company's ordered, failing endpoint, whose 14 days of history fill the chart). Knobs: BENCH_PORTAL_DB_PORT (54354), BENCH_PORTAL_DELIVERIES
// (100000), BENCH_PORTAL_REPEATS (30), BENCH_PORTAL_PAINT_RUNS (5), CHROMIUM_PATH.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';
import { ROOT } from '../../scripts/lib/env.mjs';
import { ensureBuilt, PORTAL_APP_DIR, portalJsSizes } from '../../scripts/build.mjs';
import { startGateway } from '../../scripts/lib/gateway.mjs';
import { apiKeys, jwtSecret, userToken } from '../../scripts/lib/keys.mjs';
import { startPostgrest } from '../../scripts/lib/postgrest.mjs';
import { cleanupAll, connect, log, machineInfo, machineMd, mdTable, median, onCleanup, percentile, round, startDatabase } from '../lib/harness.mjs';
import { loadPortalFixtures } from './fixtures.mjs';

const num = (name, fallback) => Number(process.env[name] ?? fallback);
const DB_PORT = num('BENCH_PORTAL_DB_PORT', 54354);
const DELIVERIES = num('BENCH_PORTAL_DELIVERIES', 100_000);
const REPEATS = num('BENCH_PORTAL_REPEATS', 30);
const PAINT_RUNS = num('BENCH_PORTAL_PAINT_RUNS', 5);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const RESULTS = path.join(ROOT, 'bench', 'RESULTS-portal.md');

async function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function main() {
  const started = Date.now();
  log('building dist/ (if its sources changed)');
  await ensureBuilt();
  const { createWebhooksClient } = await import('@serial/webhooks');

  log(`throwaway cluster on 127.0.0.1:${DB_PORT}`);
  const cluster = await startDatabase({ dir: '.local/bench-portal-db', port: DB_PORT });
  const db = await connect(cluster.url);
  log(`loading ${DELIVERIES.toLocaleString('en')} deliveries for one company, 20 x 10,000 for others`);
  const t0 = Date.now();
  const fx = await loadPortalFixtures(db, { deliveries: DELIVERIES });
  log(`fixtures loaded in ${round((Date.now() - t0) / 1000)} s`);

  const secret = jwtSecret();
  const keys = await apiKeys(secret);
  const restPort = await freePort();
  const adminPort = await freePort();
  const authenticator = new URL(cluster.url);
  authenticator.username = 'authenticator';
  const postgrest = await startPostgrest({
    dbUrl: authenticator.toString(), port: restPort, adminPort, jwtSecret: secret,
    configPath: path.join(os.tmpdir(), `serial-bench-portal-postgrest-${restPort}.conf`),
  });
  onCleanup(() => postgrest.kill('SIGTERM'));
  const gatewayPort = await freePort();
  const gateway = await startGateway({
    port: gatewayPort, routes: { rest: `http://127.0.0.1:${restPort}` }, apiKeys: [keys.anonKey, keys.serviceRoleKey],
    portal: { dir: PORTAL_APP_DIR, anonKey: keys.anonKey },
  });
  onCleanup(() => new Promise((resolve) => gateway.close(resolve)));
  const supabaseUrl = `http://127.0.0.1:${gatewayPort}`;
  const token = await userToken(fx.adminId, { secret, expiresInSeconds: 3600 });
  const supabase = createClient(supabaseUrl, keys.anonKey, { accessToken: async () => token, realtime: { transport: ws } });
  const api = createWebhooksClient(supabase);

  // --- 1. the deliveries page's queries ------------------------------------------------------
  const companyId = await api.adminCompanyId();
  const webhooks = await api.listWebhooks();
  const hook = webhooks[0].id;
  const { encodeDeliveryCursor } = await import('../../dist/cursor.js');
  // The cursor the client would hand out after the row at that depth (microseconds kept).
  const cursorAt = async (offset) => {
    const { rows } = await db.query(
      `select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at, id
         from public.webhook_deliveries where company_id = $1 order by created_at desc, id desc offset $2 limit 1`,
      [companyId, offset],
    );
    return encodeDeliveryCursor(rows[0]);
  };
  const weekAgo = new Date(Date.now() - 7 * 86400_000);
  const page = (filter) => () => api.listDeliveries({ companyId, limit: 50, count: false, ...filter });
  const scenarios = [
    ['newest page, no filter', page({})],
    ['state = failed', page({ state: 'failed' })],
    ['state = pending', page({ state: 'pending' })],
    ['state = succeeded', page({ state: 'succeeded' })],
    ['state = cancelled', page({ state: 'cancelled' })],
    ['trigger type = WEBHOOK_TEST (2 %)', page({ triggerType: 'WEBHOOK_TEST' })],
    ['trigger type = PROCESS_REVISED (33 %)', page({ triggerType: 'PROCESS_REVISED' })],
    ['one endpoint', page({ webhookId: hook })],
    ['one endpoint + state = failed', page({ webhookId: hook, state: 'failed' })],
    ['one endpoint + WEBHOOK_TEST + failed', page({ webhookId: hook, triggerType: 'WEBHOOK_TEST', state: 'failed' })],
    ['ordered endpoint + state = pending (waiting_for on every row)', page({ webhookId: fx.orderedWebhookId, state: 'pending' })],
    ['one day, a week ago', page({ since: weekAgo, until: new Date(weekAgo.getTime() + 86400_000) })],
    ['page after row 50,000 (keyset)', page({ after: await cursorAt(50_000) })],
    ['page after row 99,000 (keyset)', page({ after: await cursorAt(Math.max(0, DELIVERIES - 1000)) })],
    ['page after row 50,000, state = failed', page({ after: await cursorAt(50_000), state: 'failed' })],
    ['filter lists: endpoints', () => api.listWebhooks()],
    ['filter lists: trigger types', () => api.listTriggerTypes()],
    ['one delivery with its attempts', async () => api.getDelivery((await page({})()).items[7].id)],
  ];
  const timings = [];
  const rows = [['query', 'p50 ms', 'p95 ms', 'max ms', 'rows']];
  for (const [name, query] of scenarios) {
    for (let i = 0; i < 3; i++) await query(); // warm the connection and the plan cache
    const samples = [];
    let size = 0;
    for (let i = 0; i < REPEATS; i++) {
      const t = performance.now();
      const result = await query();
      samples.push(performance.now() - t);
      size = Array.isArray(result) ? result.length : result.items ? result.items.length : 1;
    }
    timings.push(...samples);
    rows.push([name, round(median(samples)), round(percentile(samples, 95)), round(Math.max(...samples)), size]);
    log(`${name}: p50 ${round(median(samples))} ms, p95 ${round(percentile(samples, 95))} ms`);
  }
  // The endpoints page (not in the budget above): the list with its health in one request,
  // refreshed every 3 s while open, and the 24 h figures, every 15 s.
  const endpointRows = [['query', 'p50 ms', 'p95 ms', 'max ms', 'rows']];
  for (const [name, query] of [
    ['endpoints with their health (listWebhooksWithHealth)', () => api.listWebhooksWithHealth()],
    ['figures of the last 24 h (endpointStats)', () => api.endpointStats()],
  ]) {
    for (let i = 0; i < 3; i++) await query();
    const samples = [];
    let size = 0;
    for (let i = 0; i < REPEATS; i++) {
      const t = performance.now();
      size = (await query()).length;
      samples.push(performance.now() - t);
    }
    endpointRows.push([name, round(median(samples)), round(percentile(samples, 95)), round(Math.max(...samples)), size]);
    log(`${name}: p50 ${round(median(samples))} ms, p95 ${round(percentile(samples, 95))} ms`);
  }
  const overall = { p50: round(median(timings)), p95: round(percentile(timings, 95)), p99: round(percentile(timings, 99)), max: round(Math.max(...timings)) };
  log(`all deliveries-page queries: p50 ${overall.p50} ms, p95 ${overall.p95} ms, p99 ${overall.p99} ms (${timings.length} requests)`);

  // The plans of the main shapes, as the admin (RLS on), with the company said explicitly.
  const explain = async (label, where, joinFilter = '') => {
    await db.query('begin');
    try {
      await db.query(`select set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ sub: fx.adminId, role: 'authenticated' })]);
      await db.query('set local role authenticated');
      const { rows: plan } = await db.query(
        `explain (analyze, costs off, summary on)
         select d.*, e.trigger_type from public.webhook_deliveries d
           join lateral (select e.trigger_type from public.webhook_events e where e.id = d.event_id ${joinFilter}) e on true
          where d.company_id = '${companyId}' ${where}
          order by d.created_at desc, d.id desc limit 51`,
      );
      const text = plan.map((r) => r['QUERY PLAN']);
      const index = [...new Set(text.join('\n').match(/Index (?:Only )?Scan(?: Backward)? using \w+/g) ?? [])].join(', ');
      const sort = text.some((l) => /\bSort\b/.test(l)) ? 'yes' : 'no';
      return [label, index || '(none)', sort, /Execution Time: ([\d.]+)/.exec(text.join('\n'))[1]];
    } finally {
      await db.query('rollback');
    }
  };
  const plans = [['shape', 'indexes used', 'sort', 'execution ms']];
  plans.push(await explain('newest page', ''));
  plans.push(await explain('state = failed', "and d.state = 'failed'"));
  plans.push(await explain('trigger type = WEBHOOK_TEST', '', "and e.trigger_type = 'WEBHOOK_TEST'"));
  plans.push(await explain('one endpoint', `and d.webhook_id = '${hook}'`));

  // --- 2. JavaScript size ---------------------------------------------------------------------
  const sizes = portalJsSizes();
  log(`portal JavaScript: ${round(sizes.gzipBytes / 1024)} KB gzipped (${round(sizes.rawBytes / 1024)} KB raw)`);

  // --- 3. first paint in Chromium ---------------------------------------------------------------
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  onCleanup(() => browser.close());
  const paint = async (pagePath, ready) => {
    const fcp = [];
    const data = [];
    for (let i = 0; i < PAINT_RUNS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const tab = await context.newPage();
      await tab.goto(`${supabaseUrl}${pagePath}#access_token=${token}`);
      await tab.waitForSelector(ready);
      const at = await tab.evaluate(() => ({
        fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
        ready: performance.now(),
      }));
      fcp.push(at.fcp);
      data.push(at.ready);
      await context.close();
    }
    return { fcp: { median: round(median(fcp)), max: round(Math.max(...fcp)) }, data: { median: round(median(data)), max: round(Math.max(...data)) } };
  };
  const paints = [
    ['deliveries log (/portal/deliveries)', await paint('/portal/deliveries', 'table tbody tr')],
    ['endpoints (/portal/)', await paint('/portal/', 'table tbody tr')],
  ];
  if (process.argv.includes('--screenshot')) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1040 }, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'UTC' });
    const tab = await context.newPage();
    // The ordered, failing endpoint: its state, its order and 14 days of history in one picture.
    await tab.goto(`${supabaseUrl}/portal/endpoints/${fx.orderedWebhookId}#access_token=${token}`);
    await tab.getByText(/Failing since/).first().waitFor();
    await tab.getByRole('img', { name: /Deliveries per hour by outcome/ }).waitFor();
    await tab.getByRole('table', { name: 'Latest deliveries, newest first' }).locator('tbody tr').first().waitFor();
    await tab.waitForFunction(() => [...document.querySelectorAll('button')].some((b) => b.textContent === 'Edit' && !b.disabled));
    const file = path.join(ROOT, 'docs', 'portal.png');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await tab.screenshot({ path: file });
    await context.close();
    log(`wrote ${path.relative(ROOT, file)}`);
  }
  for (const [name, p] of paints) log(`${name}: first contentful paint median ${p.fcp.median} ms (max ${p.fcp.max}); data on screen median ${p.data.median} ms (max ${p.data.max})`);

  // --- results -----------------------------------------------------------------------------------
  const machine = await machineInfo(cluster);
  const md = `# Portal budgets (\`npm run bench:portal\`)

Measured ${new Date().toISOString().slice(0, 10)} in ${round((Date.now() - started) / 1000, 0)} s.

${machineMd(machine)}
- Data: one company with ${DELIVERIES.toLocaleString('en')} deliveries over 14 days (10 endpoints, 1 in 50 a test event; 90 % succeeded, 4 % failed, 2 % cancelled, 4 % pending; one endpoint ordered and failing, its pending deliveries held behind the heads of 5 process keys), and 20 other companies with 10,000 each in the same tables.

## Summary

| budget | measured | target |
|---|---|---|
| deliveries page queries, p95 (all ${timings.length} requests below) | ${overall.p95} ms (p50 ${overall.p50}, p99 ${overall.p99}, max ${overall.max}) | < 100 ms |
| portal page JavaScript, gzipped | ${round(sizes.gzipBytes / 1024)} KB (${round(sizes.rawBytes / 1024)} KB raw, ${sizes.files.length} file) | <= 150 KB |
| first contentful paint, deliveries page (median of ${PAINT_RUNS}, fresh context each) | ${paints[0][1].fcp.median} ms (max ${paints[0][1].fcp.max}) | < 1 s |

## The deliveries page's queries

Each through the client module (dist/), supabase-js, the gateway and PostgREST, as the company's
ADMIN (RLS on), page size 50, ${REPEATS} times after 3 warm-ups. Keyset pages (\`after\`) cost the
same at any depth.

${mdTable(rows)}

Plans of the main shapes (EXPLAIN ANALYZE as the ADMIN, the company said explicitly as the client does):

${mdTable(plans)}

## The endpoints page's queries

Not part of the budget above; the list (with each endpoint's health embedded) refreshes every
3 s while the page is open, the figures every 15 s.

${mdTable(endpointRows)}

## First paint on the local stack

Headless Chromium (Debian), the page served by the gateway, signed in from the fragment, a fresh
browser context per run (no cache). "Data on screen" is when the first table row exists.

${mdTable([['page', 'first contentful paint (median / max)', 'data on screen (median / max)'], ...paints.map(([name, p]) => [name, `${p.fcp.median} / ${p.fcp.max} ms`, `${p.data.median} / ${p.data.max} ms`])])}
`;
  fs.writeFileSync(RESULTS, md);
  log(`wrote ${path.relative(ROOT, RESULTS)}`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());

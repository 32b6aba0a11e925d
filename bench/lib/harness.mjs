// Shared pieces of `npm run bench` and `npm run bench:peers`: a throwaway cluster, the
// fixtures, the receiver child process, delivering subprocesses with their peak RSS, the
// load generators, and small statistics. Everything talks to 127.0.0.1 only, and every
// wait is bounded in time.
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ROOT, denoExecutable } from '../../scripts/lib/env.mjs';
import { applyBootstrap, applyMigrations, applySeed, findPostgres, startCluster } from '../../scripts/lib/cluster.mjs';
import { run } from '../../scripts/lib/run.mjs';
import { readTask } from '../../supabase/functions/tasks.mjs';

export const FUNCTIONS_DIR = path.join(ROOT, 'supabase', 'functions');
export const DENO = denoExecutable();
export const OUT_DIR = path.join(ROOT, 'bench', '.out');
export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function log(msg) {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

// ---------------------------------------------------------------------------------------
// Cleanup: whatever we started is stopped on exit, error or Ctrl-C.
// ---------------------------------------------------------------------------------------
const cleanups = [];
export function onCleanup(fn) {
  cleanups.push(fn);
}
export async function cleanupAll() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch (e) {
      console.error(`cleanup: ${e.message}`);
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping`);
    cleanupAll().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------------------

/**
 * A fresh cluster with the platform bootstrap, the migrations and the seed.
 * fast = fsync, synchronous_commit and full_page_writes off (see cluster.mjs): the data
 * is thrown away, and it keeps the numbers about CPU work rather than this VM's disk.
 */
export async function startDatabase({ dir, port }) {
  const pgInfo = await findPostgres();
  if (!pgInfo) throw new Error('PostgreSQL >= 15 server binaries not found (npm start installs them)');
  const cluster = await startCluster({ pg: pgInfo, dir: path.join(ROOT, dir), port, fresh: true, fast: true });
  onCleanup(() => cluster.stop());
  await applyBootstrap(cluster);
  await applyMigrations(cluster);
  await applySeed(cluster);
  return cluster;
}

export async function connect(url, applicationName = 'bench') {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  onCleanup(() => client.end());
  return client;
}

/**
 * Three companies: `one` with 1 endpoint, `five` with 5 endpoints (all PROCESS_REVISED),
 * `zero` with none; 100 processes in `zero` and `five` for pgbench (bench.process_ids maps
 * (set_no, n) to them, set_no = endpoint count). Returns ids, endpoint paths and secrets,
 * and a process snapshot used as the realistic part of every payload.
 */
export async function createFixtures(client, receiverPort) {
  await client.query(`
    create schema if not exists bench;
    create table bench.process_ids (set_no int, n int, id uuid not null, primary key (set_no, n));
  `);
  const companies = {};
  for (const [key, endpoints] of [['one', 1], ['five', 5], ['zero', 0]]) {
    const { rows: [c] } = await client.query('insert into public.companies (name) values ($1) returning id', [`bench ${key}`]);
    const webhooks = [];
    for (let i = 0; i < endpoints; i++) {
      const urlPath = `/hook/${key}-${i}`;
      const { rows: [w] } = await client.query(
        `insert into public.webhooks (company_id, trigger_type, url) values ($1, 'PROCESS_REVISED', $2) returning id`,
        [c.id, `http://127.0.0.1:${receiverPort}${urlPath}`],
      );
      const { rows: [s] } = await client.query('select secret from private.webhook_secrets where webhook_id = $1', [w.id]);
      webhooks.push({ id: w.id, path: urlPath, secret: s.secret });
    }
    companies[key] = { id: c.id, endpoints, webhooks };
    await client.query(
      `with p as (
         insert into public.processes (company_id, name, type, revision_description)
         select $1, 'Final assembly station ' || n, 'PRODUCTION', 'initial definition'
           from generate_series(1, 100) n
         returning id)
       insert into bench.process_ids (set_no, n, id) select $2, row_number() over (), id from p`,
      [c.id, endpoints],
    );
  }
  const { rows: [{ snap }] } = await client.query(
    `select private.process_event_data(p) as snap from public.processes p where company_id = $1 limit 1`,
    [companies.one.id],
  );
  const secrets = Object.fromEntries(
    Object.values(companies).flatMap((c) => c.webhooks.map((w) => [w.path, w.secret])),
  );
  return { companies, snapshot: snap, secrets };
}

/**
 * Empties the outbox between runs (the fixtures stay): deliveries, events, attempts, the
 * endpoints' scheduling state, health and earned concurrency, and the signals for the dispatchers.
 */
export async function clearOutbox(client) {
  await client.query(`truncate public.webhook_delivery_attempts, public.webhook_deliveries, public.webhook_events,
                               private.webhook_endpoint_signals;
                      update private.webhook_endpoints
                         set ready_at = null, consecutive_failures = 0, failing_since = null,
                             circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null,
                             last_status = null, last_error = null, last_attempt_at = null, last_success_at = null,
                             concurrency_limit = null
                       where ready_at is not null or consecutive_failures > 0 or failing_since is not null
                          or circuit_opened_at is not null or last_attempt_at is not null
                          or concurrency_limit is not null`);
}

/**
 * A company with `endpoints` PROCESS_REVISED webhooks at /hook/<key>-<i> of the receiver
 * (delivery_order `order`) and `processes` processes (bench.process_ids set_no = `setNo`,
 * when given). Returns { id, endpoints, webhooks: [{ id, path, secret }], processIds }.
 */
export async function createCompany(client, receiverPort, key, { endpoints = 1, processes = 0, setNo = null, order = 'parallel' } = {}) {
  const { rows: [c] } = await client.query('insert into public.companies (name) values ($1) returning id', [`bench ${key}`]);
  await client.query(
    `insert into public.webhooks (company_id, trigger_type, url, delivery_order)
     select $1, 'PROCESS_REVISED', 'http://127.0.0.1:' || $2::int || '/hook/' || $3 || '-' || (i - 1), $5
       from generate_series(1, $4::int) i`,
    [c.id, receiverPort, key, endpoints, order],
  );
  // The secrets are made by a trigger: read them in a statement of their own.
  const { rows: webhooks } = await client.query(
    `select w.id, regexp_replace(w.url, '^http://[^/]+', '') as path, s.secret
       from public.webhooks w join private.webhook_secrets s on s.webhook_id = w.id
      where w.company_id = $1
      order by (regexp_replace(w.url, '.*-', ''))::int`,
    [c.id],
  );
  const { rows: procs } = await client.query(
    `insert into public.processes (company_id, name, type, revision_description)
     select $1, 'Final assembly station ' || n, 'PRODUCTION', 'initial definition'
       from generate_series(1, $2::int) n
     returning id`,
    [c.id, processes],
  );
  const processIds = procs.map((p) => p.id);
  if (setNo !== null && processIds.length > 0) {
    await client.query(
      `insert into bench.process_ids (set_no, n, id) select $1, n, id from unnest($2::uuid[]) with ordinality as t(id, n)`,
      [setNo, processIds],
    );
  }
  return { id: c.id, key, endpoints, webhooks, processIds };
}

// The statements that enqueue. The payload is what a PROCESS_REVISED event carries
// (a process snapshot), plus `seq` and, for latency runs, `sent_at`.
const ENQUEUE_ONE = `
  select private.enqueue_webhook_event($1::uuid, 'PROCESS_REVISED',
    jsonb_build_object('seq', $2::int, 'sent_at', extract(epoch from clock_timestamp()) * 1000, 'process', $3::jsonb)) as event_id`;
const ENQUEUE_MANY = `
  select count(private.enqueue_webhook_event($1::uuid, 'PROCESS_REVISED',
    jsonb_build_object('seq', g, 'process', $3::jsonb)))::int as events
    from generate_series(1, $2::int) g`;

// Tables whose statistics the bulk enqueue refreshes before it commits (see enqueueMany).
export const OUTBOX_TABLES = ['public.webhook_events', 'public.webhook_deliveries'];

/**
 * N events in one transaction; resolves when COMMIT has returned. Unless `analyze` is
 * false, the transaction ANALYZEs `analyze` (default: the outbox tables; a peer adds its
 * job table) before it commits, so every system plans its queries against statistics that
 * describe the backlog. Without that, claim_due_deliveries can keep a plan made for "no
 * row is ever due" (the statistics of a table of delivered rows) and slow down by an order
 * of magnitude; bench/run.mjs measures that case on its own ("stale statistics").
 */
export async function enqueueMany(client, companyId, n, snapshot, { analyze = OUTBOX_TABLES, inTransaction = false } = {}) {
  if (!analyze) {
    await client.query(ENQUEUE_MANY, [companyId, n, snapshot]);
    return;
  }
  if (!inTransaction) await client.query('begin');
  try {
    await client.query(ENQUEUE_MANY, [companyId, n, snapshot]);
    await client.query(`analyze ${analyze.join(', ')}`);
    if (!inTransaction) await client.query('commit');
  } catch (e) {
    if (!inTransaction) await client.query('rollback');
    throw e;
  }
}

/**
 * Makes the outbox statistics look like a production table's: a history of delivered
 * rows (next_attempt_at null), analyzed, then emptied (TRUNCATE keeps pg_statistic).
 */
export async function useSteadyStateStatistics(client, companyId, snapshot) {
  await clearOutbox(client);
  await enqueueMany(client, companyId, 2000, snapshot, { analyze: false });
  await client.query(`update public.webhook_deliveries
                         set state = 'succeeded', next_attempt_at = null, completed_at = now()`);
  await client.query(`analyze ${OUTBOX_TABLES.join(', ')}`);
  await clearOutbox(client);
}

/** One event (autocommit unless the client is in a transaction); returns its id. */
export async function enqueueOne(client, companyId, seq, snapshot) {
  const { rows } = await client.query(ENQUEUE_ONE, [companyId, seq, snapshot]);
  return rows[0].event_id;
}

export async function expectedDeliveryIds(client) {
  const { rows } = await client.query('select id from public.webhook_deliveries');
  return rows.map((r) => r.id);
}

/**
 * Open-loop load at `rate` events/s: event i is due at start + i/rate whatever happened
 * before (a slow commit does not lower the offered rate). Returns, per seq, the time the
 * commit returned to the client (the client-side latency cross-check).
 */
export async function steadyLoad({ count, rate, enqueue, firstSeq = 1, maxMs = 60_000 }) {
  const start = now();
  const committedAt = new Map();
  for (let i = 0; i < count && now() - start < maxMs; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    await enqueue(firstSeq + i);
    committedAt.set(firstSeq + i, now());
  }
  return committedAt;
}

// ---------------------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------------------

export async function startReceiver() {
  const child = fork(path.join(ROOT, 'bench', 'lib', 'receiver.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map();
  let rid = 0;
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('receiver did not start in 10 s')), 10_000);
    child.on('message', (m) => {
      if (m.ready) {
        clearTimeout(t);
        resolve(m.port);
      } else if (pending.has(m.rid)) {
        pending.get(m.rid)(m);
        pending.delete(m.rid);
      }
    });
    child.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
  });
  const call = (cmd, args = {}) =>
    new Promise((resolve, reject) => {
      const id = ++rid;
      const t = setTimeout(() => reject(new Error(`receiver did not answer ${cmd}`)), 30_000);
      pending.set(id, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      child.send({ rid: id, cmd, ...args });
    });
  const receiver = {
    port,
    pid: child.pid,
    call,
    /** Waits until `expected` distinct webhook-ids arrived at paths starting with `prefix`. */
    async waitForPaths(prefix, expected, timeoutMs) {
      const deadline = now() + timeoutMs;
      while (now() < deadline) {
        if ((await call('countPaths', { prefix })).unique >= expected) return true;
        await sleep(10);
      }
      return false;
    },
    /** Waits until `expected` distinct webhook-ids arrived; false on timeout. */
    async waitFor(expected, timeoutMs) {
      const deadline = now() + timeoutMs;
      while (now() < deadline) {
        if ((await call('count')).unique >= expected) return true;
        await sleep(20);
      }
      return false;
    },
    async stop() {
      child.kill('SIGTERM');
    },
  };
  onCleanup(() => receiver.stop());
  return receiver;
}

// ---------------------------------------------------------------------------------------
// Delivering processes (ours and the peers), with their peak RSS
// ---------------------------------------------------------------------------------------

/** VmHWM (peak resident set) of a live process, in MB. */
export function peakRssMb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

/**
 * Spawns a long-running process and waits for `ready` (a regexp) on its stdout. Its
 * output goes to bench/.out/<name>.log. stop() sends SIGTERM, then SIGKILL after 10 s.
 */
export async function startProcess({ name, cmd, args, cwd, env, ready, timeoutMs = 60_000 }) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const logFile = fs.createWriteStream(path.join(OUT_DIR, `${name}.log`), { flags: 'a' });
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(logFile, { end: false });
  child.stderr.pipe(logFile, { end: false });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs} ms (see bench/.out/${name}.log)`)), timeoutMs);
    let seen = '';
    const onData = (d) => {
      seen = (seen + d).slice(-4096);
      if (ready.test(seen)) {
        clearTimeout(t);
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`${name} exited with ${code} before it was ready (see bench/.out/${name}.log)`));
    });
  });
  let stopped = false;
  const proc = {
    pid: child.pid,
    peakRssMb: () => peakRssMb(child.pid),
    /** SIGKILL at once: for runs whose in-flight requests would only be waited out. */
    async kill() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await Promise.race([exited, sleep(5_000)]);
      }
      logFile.end();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killed = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
        if (!killed) child.kill('SIGKILL');
        await Promise.race([exited, sleep(5_000)]);
      }
      logFile.end();
    },
  };
  onCleanup(() => proc.stop());
  return proc;
}

/** The worker's start command: the `worker` task of supabase/functions/deno.json. */
const WORKER_TASK = readTask('worker');
const V8_FLAGS = /^--v8-flags=/;

/**
 * The `worker` task's process settings (its V8 flags and environment), none of them code:
 * bench/README.md says what they buy (peak RSS ~180-210 MB without them, ~85-110 MB with
 * them, same throughput). BENCH_PLAIN_WORKER=1 runs the dispatcher without them.
 */
export const WORKER_TUNING = process.env.BENCH_PLAIN_WORKER === '1'
  ? { v8Flags: '', env: {} }
  : { v8Flags: WORKER_TASK.args.find((a) => V8_FLAGS.test(a))?.replace(V8_FLAGS, '') ?? '', env: WORKER_TASK.env };

/**
 * The command line of our dispatcher in worker mode: the task's, with `tuning`'s V8 flags
 * in place of its own (the task's environment is `tuning.env`). Spawned directly, not
 * through `deno task`, so the peak RSS measured is the dispatcher's alone.
 */
export function dispatcherArgs(tuning = WORKER_TUNING) {
  const flags = tuning.v8Flags ? [`--v8-flags=${tuning.v8Flags}`] : [];
  const args = [...WORKER_TASK.args];
  const at = args.findIndex((a) => V8_FLAGS.test(a));
  if (at >= 0) args.splice(at, 1, ...flags);
  else args.splice(1, 0, ...flags);
  return args;
}

export function describeTuning(tuning = WORKER_TUNING) {
  const parts = [...Object.entries(tuning.env).map(([k, v]) => `${k}=${v}`), 'deno', dispatcherArgs(tuning).join(' ')];
  return parts.join(' ');
}

/** Our dispatcher in worker mode (the `worker` task of supabase/functions/deno.json), with WORKER_TUNING. */
export async function startOurDispatcher({ dbUrl, receiverPort, knobs, client, tuning = WORKER_TUNING }) {
  const proc = await startProcess({
    name: 'dispatcher',
    cmd: DENO,
    args: dispatcherArgs(tuning),
    cwd: FUNCTIONS_DIR,
    env: {
      ...tuning.env,
      SUPABASE_DB_URL: dbUrl,
      WEBHOOK_ALLOWED_TARGETS: `127.0.0.1:${receiverPort}`,
      WEBHOOK_WORKER_ID: 'bench-dispatcher',
      ...Object.fromEntries(Object.entries(knobs).map(([k, v]) => [k, String(v)])),
    },
    ready: /worker started/,
  });
  // "started" is printed before LISTEN is in place; wait for it so a commit is noticed.
  await waitUntil(async () => {
    const { rows } = await client.query(
      `select count(*)::int as n from pg_stat_activity
        where application_name = 'webhook-dispatcher' and query ilike 'listen%'`,
    );
    return rows[0].n > 0;
  }, 20_000, 'the dispatcher to LISTEN');
  return proc;
}

/** Polls `check` until it holds (true) or `timeoutMs` passes (false). */
export async function poll(check, timeoutMs, everyMs = 20) {
  const deadline = now() + timeoutMs;
  while (now() < deadline) {
    if (await check()) return true;
    await sleep(everyMs);
  }
  return false;
}

export async function waitUntil(check, timeoutMs, what, everyMs = 20) {
  if (!(await poll(check, timeoutMs, everyMs))) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// ---------------------------------------------------------------------------------------
// Statistics and reporting
// ---------------------------------------------------------------------------------------

/** The 1-minute load average: how busy the shared machine was (2 = both cores). */
export function loadAverage() {
  return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** Nearest-rank percentile of unsorted numbers. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
export const median = (values) => percentile(values, 50);

export function round(x, digits = 1) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A Markdown table from an array of row arrays (first row = header). */
export function mdTable(rows) {
  const [head, ...body] = rows;
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export async function machineInfo(cluster) {
  const deno = await run(DENO, ['--version'], { capture: true });
  const pgVersion = await run(cluster.pg.bin('postgres'), ['--version'], { capture: true });
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu,
    memGb: round(os.totalmem() / 1024 ** 3, 1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    deno: deno.stdout.split('\n')[0],
    postgres: pgVersion.stdout.trim(),
  };
}

export function machineMd(m) {
  return [
    `- CPU: ${m.nproc} cores (nproc), ${m.cpu}; memory ${m.memGb} GB; ${m.kernel}`,
    `- ${m.postgres}; ${m.deno}; Node ${m.node}`,
  ].join('\n');
}

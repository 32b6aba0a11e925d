#!/usr/bin/env node
// `npm test`: every check, against a FRESH throwaway database (.local/test-db, port 54332),
// so it runs next to `npm start` and never depends on leftovers.
//
//   npm test                              everything
//   npm test -- --only=pgtap,types        just these steps (ids below); --skip=deno,vitest the opposite
//   npm test -- supabase/tests/x.test.sql pgTAP on these files only (other positional args go to vitest as filters)
//   npm test -- --keep                    keep the database up after the run, until Ctrl-C (to poke at it with psql)
//
// Steps, in order: tsc, build, pgtap, types, schema, advisors, lint, deno, deno-2.1, vitest. A step with nothing to
// run says so and counts neither as passed nor failed. The last two lines are
// `steps: N passed, M failed` and `tests: N passed, M failed` (every pgTAP, Deno and
// vitest test, plus each check step as one); the exit code is non-zero when anything failed.
//
// Knobs (environment or .env): TEST_DB_PORT, TEST_DB_DATA_DIR, TEST_DB_PG_CRON, TEST_STEP_TIMEOUT, PG_BINDIR.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, BIN, SUPABASE_DIR, denoExecutable, envBool, envDir, envPort, envStr } from './lib/env.mjs';
import { run, say, table, color, UserError } from './lib/run.mjs';
import { handleSignals, isStopping, onShutdown, report, shutdown } from './lib/lifecycle.mjs';
import { ensureTools, startCluster, stopCluster, applyBootstrap, applyMigrations, applySeed, applyTestHelpers, psql } from './lib/cluster.mjs';
import { TYPES_FILE, cliUrl, genTypes, supabase } from './lib/supabase.mjs';
import { RULES_FILE, genRules } from './lib/rules.mjs';
import { SCHEMA_FILE, dumpSchema } from './lib/schema-dump.mjs';

const FUNCTIONS_DIR = path.join(SUPABASE_DIR, 'functions');
const PGTAP_DIR = path.join(SUPABASE_DIR, 'tests');
// Schemas that are not ours to lint or advise on: Supabase's, extensions', test helpers'.
const NOT_OURS = new Set(['auth', 'extensions', 'supabase_migrations', 'tests', 'cron', 'net', 'vault', 'storage', 'realtime', 'graphql', 'graphql_public', 'pgbouncer', 'information_schema']);

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

const STEPS = [
  { id: 'tsc', title: 'TypeScript (tsc --noEmit)', db: false, run: stepTsc },
  { id: 'build', title: 'npm run build (dist/: tsc + Vite; the built output is what vitest imports and the browser loads)', db: false, run: stepBuild },
  { id: 'pgtap', title: 'pgTAP (pg_prove supabase/tests)', db: true, run: stepPgtap },
  { id: 'types', title: 'src/database.types.ts and src/database.rules.ts match the migrations', db: true, run: stepTypes },
  { id: 'schema', title: 'the schema dump matches supabase/schema.sql', db: true, run: stepSchema },
  { id: 'advisors', title: 'supabase db advisors (security)', db: true, run: stepAdvisors },
  { id: 'lint', title: 'supabase db lint (plpgsql_check)', db: true, run: stepLint },
  { id: 'deno', title: 'deno test supabase/functions', db: true, run: stepDeno },
  { id: 'deno-2.1', title: 'the same on Deno 2.1.4, the level hosted Supabase Edge Functions run', db: true, run: stepDenoHosted },
  { id: 'vitest', title: 'vitest (tests/)', db: true, run: stepVitest },
];

function parseArgs(argv) {
  const opts = { only: null, skip: new Set(), keep: false, sqlFiles: [], vitestFilters: [] };
  const ids = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const arg of argv) {
    if (arg.startsWith('--only=')) opts.only = new Set(ids(arg.slice(7)));
    else if (arg.startsWith('--skip=')) opts.skip = new Set(ids(arg.slice(7)));
    else if (arg === '--keep') opts.keep = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(`usage: npm test -- [--only=ids] [--skip=ids] [--keep] [file.test.sql ...] [vitest filters ...]\nsteps: ${STEPS.map((s) => s.id).join(', ')}`);
      process.exit(0);
    } else if (arg.startsWith('--')) throw new UserError(`unknown option ${arg} (try --help)`);
    else if (arg.endsWith('.sql')) opts.sqlFiles.push(path.resolve(arg));
    else opts.vitestFilters.push(arg);
  }
  const known = new Set(STEPS.map((s) => s.id));
  for (const id of [...(opts.only ?? []), ...opts.skip]) {
    if (!known.has(id)) throw new UserError(`unknown step "${id}"; steps are: ${[...known].join(', ')}`);
  }
  return opts;
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
const passed = (detail) => ({ status: 'passed', detail });
const failed = (detail) => ({ status: 'failed', detail });
const nothing = (detail) => ({ status: 'skipped', detail: `nothing to run: ${detail}` });

function walk(dir, keep, skipDir = () => false) {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && !entry.name.startsWith('.') && !skipDir(full)) out.push(...walk(full, keep, skipDir));
    } else if (keep(entry.name)) out.push(full);
  }
  return out.sort();
}

const rel = (p) => path.relative(ROOT, p);

// No step may hang CI forever: each tool run gets TEST_STEP_TIMEOUT seconds (default 15 min).
const STEP_TIMEOUT_S = Number(envStr('TEST_STEP_TIMEOUT', '900'));

/** Run a test tool with its output streamed live and kept for parsing. */
async function tool(cmd, args, opts) {
  const res = await run(cmd, args, { tee: true, timeoutMs: STEP_TIMEOUT_S * 1000, ...opts });
  if (res.timedOut) throw new UserError(`${path.basename(cmd)} timed out after ${STEP_TIMEOUT_S}s (TEST_STEP_TIMEOUT)`);
  return res;
}

// ---------------------------------------------------------------------------------------
// Steps. Each returns { status: 'passed'|'failed'|'skipped', detail }.
// ---------------------------------------------------------------------------------------

async function stepTsc() {
  if (!fs.existsSync(path.join(ROOT, 'tsconfig.json'))) return nothing('no tsconfig.json');
  const res = await tool(path.join(BIN, 'tsc'), ['--noEmit', '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: ROOT });
  const out = res.stdout + res.stderr;
  if (/TS18003/.test(out)) return nothing('no TypeScript files matched by tsconfig.json yet');
  const errors = (out.match(/error TS\d+/g) ?? []).length;
  return res.code === 0 ? passed('no type errors') : failed(`${errors || 'some'} type error(s)`);
}

async function stepBuild() {
  const { build } = await import('./build.mjs');
  const sizes = await build({ quiet: true });
  return passed(`dist/ built; portal page JavaScript ${(sizes.gzipBytes / 1024).toFixed(1)} KB gzipped`);
}

async function stepPgtap(ctx) {
  const files = ctx.opts.sqlFiles.length
    ? ctx.opts.sqlFiles
    : walk(PGTAP_DIR, (n) => n.endsWith('.test.sql'), (d) => path.basename(d) === 'helpers');
  if (files.length === 0) return nothing('no supabase/tests/**/*.test.sql files');
  const url = new URL(ctx.cluster.url);
  const res = await tool('pg_prove', ['--ext', '.sql', '--failures', ...files.map(rel)], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...ctx.env,
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: 'postgres',
      PGPASSWORD: decodeURIComponent(url.password),
      PGDATABASE: 'postgres',
      PGOPTIONS: '-c client_min_messages=warning',
    },
  });
  // TAP::Harness summary: "Files=4, Tests=36, ..." and per failed file "(Wstat: 0 Tests: 9 Failed: 2)".
  const out = stripAnsi(res.stdout + res.stderr);
  const total = /Files=(\d+), Tests=(\d+)/.exec(out);
  const failedTests = [...out.matchAll(/Tests: \d+ Failed: (\d+)\)/g)].reduce((n, m) => n + Number(m[1]), 0);
  const badFiles = (out.match(/\(Wstat: /g) ?? []).length;
  const counts = total ? `${total[2]} tests in ${total[1]} files` : `${files.length} files`;
  const tests = total ? { passed: Number(total[2]) - failedTests, failed: failedTests } : undefined;
  if (res.code === 0 && /Result: PASS/.test(out)) return { ...passed(counts), tests };
  return { ...failed(`${failedTests} failed of ${counts}${badFiles ? `; ${badFiles} file(s) with failures or a bad plan` : ''}`), tests };
}

/**
 * A generated file that is committed must equal what the migrations generate now: passes
 * when it does, otherwise shows where they differ and fails with the command that fixes it.
 */
async function matchesCommitted(file, fresh, fix) {
  if (!fs.existsSync(file)) return failed(`${rel(file)} does not exist: run \`${fix}\` and commit it`);
  if (fs.readFileSync(file, 'utf8') === fresh) return passed(`${rel(file)} is up to date`);
  const tmp = path.join(os.tmpdir(), `${path.basename(file)}.${process.pid}`);
  fs.writeFileSync(tmp, fresh);
  const diff = await run('diff', ['-u', '--label', `${rel(file)} (committed)`, '--label', 'generated from the migrations', file, tmp], { capture: true }).catch(() => null);
  fs.rmSync(tmp, { force: true });
  if (diff?.stdout) {
    const lines = diff.stdout.split('\n');
    console.log(lines.slice(0, 40).join('\n') + (lines.length > 40 ? `\n... (${lines.length - 40} more diff lines)` : ''));
  }
  return failed(`${rel(file)} is out of date with the migrations: run \`${fix}\` and commit it`);
}

async function stepTypes(ctx) {
  const types = await matchesCommitted(TYPES_FILE, await genTypes(ctx.cluster.url), 'npm run gen:types');
  const rules = await matchesCommitted(RULES_FILE, await genRules(ctx.cluster.url), 'npm run gen:types');
  return types.status === 'failed' ? types : rules.status === 'failed' ? rules : passed(`${types.detail}; ${rules.detail}`);
}

// The seed and the test helpers change rows and other schemas, never the dumped schema, so
// the test database dumps the same as the migrations-only one `npm run schema:dump` builds.
async function stepSchema(ctx) {
  return matchesCommitted(SCHEMA_FILE, await dumpSchema(ctx.cluster), 'npm run schema:dump');
}

async function stepAdvisors(ctx) {
  const res = await supabase(['db', 'advisors', `--remote=${ctx.cliUrl}`, '--type', 'all', '--level', 'info', '--output-format', 'json']);
  let findings;
  try {
    findings = JSON.parse(res.stdout).results;
  } catch {
    console.log(res.stdout + res.stderr);
    return failed(`could not read the advisors' JSON output (exit ${res.code})`);
  }
  // Test helpers never ship, so their findings are noise.
  findings = findings.filter((f) => !NOT_OURS.has(f.metadata?.schema));
  const blocking = findings.filter((f) => f.categories?.includes('SECURITY') && (f.level === 'WARN' || f.level === 'ERROR'));
  for (const f of findings) {
    const mark = blocking.includes(f) ? color.red('✗') : color.dim('·');
    console.log(`${mark} ${f.level} ${f.categories?.join('/')} ${f.name}: ${f.detail}`);
    if (blocking.includes(f)) console.log(`    ${color.dim(f.remediation ?? '')}`);
  }
  const others = findings.length - blocking.length;
  const note = others ? ` (${others} other note${others === 1 ? '' : 's'}: performance or INFO)` : '';
  if (blocking.length) return failed(`${blocking.length} security issue(s) at WARN or above${note}`);
  return passed(`no security issues${note}`);
}

async function stepLint(ctx) {
  // Only our schemas: plpgsql_check would otherwise report on pgTAP's own functions.
  const out = await psql(ctx.cluster, { sql: "select nspname from pg_namespace where nspname !~ '^pg_' order by 1", args: ['-At'] });
  const schemas = out.split('\n').filter((s) => s && !NOT_OURS.has(s));
  if (schemas.length === 0) return nothing('no schemas of ours');
  const res = await supabase(['db', 'lint', `--remote=${ctx.cliUrl}`, '--schema', schemas.join(','), '--level', 'warning', '--output-format', 'json']);
  let results;
  try {
    results = JSON.parse(res.stdout).results ?? [];
  } catch {
    console.log(res.stdout + res.stderr);
    return failed(`could not read the linter's JSON output (exit ${res.code})`);
  }
  let errors = 0;
  let warnings = 0;
  for (const fn of results) {
    for (const issue of fn.issues ?? []) {
      const isError = issue.level === 'error';
      if (isError) errors++;
      else warnings++;
      const where = issue.statement ? ` (line ${issue.statement.lineNumber}: ${issue.statement.text})` : '';
      console.log(`${isError ? color.red('✗ error') : color.yellow('! warning')} ${fn.function}: ${issue.message}${where}`);
      if (issue.query?.text) console.log(`    ${color.dim(issue.query.text)}`);
    }
  }
  const detail = `${errors} error(s), ${warnings} warning(s) in schemas ${schemas.join(', ')}`;
  return errors ? failed(detail) : passed(detail);
}

async function stepDeno(ctx) {
  return denoTests(ctx, denoExecutable('deno'));
}

// Hosted Supabase runs the function on a Deno 2.1-level Edge Runtime: every dispatcher
// test, unit and end-to-end (the dispatchers those spawn run on the same Deno), runs on
// it too. Two differences from the step above, both about the toolchain, not the code:
// - `--no-lock`: Deno 2.1 cannot read deno.lock's version 5. The imports pin exact
//   versions in deno.json, so it resolves the same packages; the step above checks them
//   against the lock. (A second, version-4 lock only Deno 2.1 could regenerate would be
//   one more thing to keep in step.) The end-to-end tests pass the flag on to the
//   dispatchers they start (_test/runtime.ts).
// - Deno 2.1 trusts only its bundled Mozilla roots; current Denos add the system's (where
//   a TLS-inspecting proxy's CA lives, as on these machines). The same trust to fetch npm
//   packages, unless the environment chose otherwise.
// Two files are left to the step above, said in the step's result: worker mode riding out
// a Postgres restart and a database outage. Hosted Supabase runs HTTP mode only, and worker
// mode runs on the Deno npm installs; on Deno 2.1 postgres.js itself can die when the
// server goes away mid-write ("Cannot read properties of null (reading 'write')" in its
// nextWrite), a race the restart test caught in 2 of 4 runs and the outage test in 1 of 14.
const NOT_ON_DENO_2_1 = ['webhook-dispatcher/postgres_restart_test.ts', 'webhook-dispatcher/db_outage_test.ts'];

async function stepDenoHosted(ctx) {
  const env = process.env.DENO_TLS_CA_STORE || process.env.DENO_CERT ? {} : { DENO_TLS_CA_STORE: 'mozilla,system' };
  return denoTests(ctx, denoExecutable('deno-2-1'), { flags: ['--no-lock'], env, exclude: NOT_ON_DENO_2_1 });
}

async function denoTests(ctx, deno, { flags = [], env = {}, exclude = [] } = {}) {
  // Deno's own test file pattern: {*_,*.,}test.{ts,tsx,mts,js,mjs,jsx}
  const all = walk(FUNCTIONS_DIR, (n) => /(^|[._])test\.(ts|tsx|mts|js|mjs|jsx)$/.test(n));
  const excluded = exclude.map((f) => path.join(FUNCTIONS_DIR, f));
  for (const f of excluded) if (!all.includes(f)) throw new UserError(`${rel(f)} is listed as not run on this Deno but does not exist`);
  const files = all.filter((f) => !excluded.includes(f));
  if (files.length === 0) return nothing('no *_test.ts files in supabase/functions');
  // Run each file from the folder of its nearest deno.json, so its import map applies.
  const groups = new Map();
  for (const file of files) {
    let dir = path.dirname(file);
    while (dir !== FUNCTIONS_DIR && !['deno.json', 'deno.jsonc'].some((c) => fs.existsSync(path.join(dir, c)))) dir = path.dirname(dir);
    groups.set(dir, [...(groups.get(dir) ?? []), path.relative(dir, file)]);
  }
  let pass = 0;
  let fail = 0;
  let code = 0;
  for (const [dir, group] of groups) {
    const res = await tool(deno, ['test', '--allow-all', ...flags, ...group], {
      cwd: dir,
      env: { ...process.env, ...ctx.env, ...env, DENO_NO_UPDATE_CHECK: '1', ...(process.stdout.isTTY ? {} : { NO_COLOR: '1' }) },
    });
    const m = /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/.exec(stripAnsi(res.stdout + res.stderr));
    if (m) {
      pass += Number(m[1]);
      fail += Number(m[2]);
    }
    if (res.code !== 0) code = res.code;
  }
  const left = excluded.length ? `; not run here: ${excluded.map((f) => path.basename(f)).join(', ')} (see scripts/test.mjs)` : '';
  const detail = `${pass} passed, ${fail} failed in ${files.length} file(s)${left}`;
  const tests = { passed: pass, failed: fail };
  return code === 0 ? { ...passed(detail), tests } : { ...failed(fail ? detail : `deno test exited with ${code}; ${detail}`), tests };
}

async function stepVitest(ctx) {
  const files = walk(path.join(ROOT, 'tests'), (n) => /\.(test|spec)\.(ts|mts|js|mjs)$/.test(n));
  if (files.length === 0) return nothing('no *.test.ts files in tests/');
  const hasConfig = ['vitest.config.ts', 'vitest.config.mts', 'vitest.config.js', 'vitest.config.mjs'].some((f) => fs.existsSync(path.join(ROOT, f)));
  const args = ['run', ...(hasConfig ? [] : ['--dir', 'tests']), ...ctx.opts.vitestFilters];
  const res = await tool(path.join(BIN, 'vitest'), args, {
    cwd: ROOT,
    env: { ...process.env, ...ctx.env, ...(process.stdout.isTTY ? { FORCE_COLOR: '1' } : {}) },
  });
  // "Tests  2 failed | 40 passed (42)"
  const line = /^\s*Tests\s+(.*)$/m.exec(stripAnsi(res.stdout));
  const num = (word) => Number(new RegExp(`(\\d+) ${word}`).exec(line?.[1] ?? '')?.[1] ?? 0);
  const detail = line ? `${num('passed')} passed, ${num('failed')} failed${num('skipped') ? `, ${num('skipped')} skipped` : ''}` : `exit ${res.code}`;
  const tests = line ? { passed: num('passed'), failed: num('failed') } : undefined;
  return res.code === 0 ? { ...passed(detail), tests } : { ...failed(detail), tests };
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

async function setupDatabase(ctx) {
  // The browser and ps only for vitest (the portal's tests, the local stack's tests).
  const forVitest = ctx.selected.some((s) => s.id === 'vitest') ? ['chromium', 'ps'] : [];
  const pg = await ensureTools(['server', 'pgtap', 'plpgsql_check', 'pg_prove', ...(ctx.pgCron ? ['pg_cron'] : []), ...forVitest]);
  say(`PostgreSQL ${pg.version} (${pg.bindir})`);
  const dir = envDir('TEST_DB_DATA_DIR', '.local/test-db');
  onShutdown(() => stopCluster(pg, dir)); // before starting: a Ctrl-C mid-start stops it too
  const cluster = await startCluster({
    pg,
    dir,
    port: envPort('TEST_DB_PORT', 54332),
    portVar: 'TEST_DB_PORT',
    fresh: true,
    fast: true,
    pgCron: ctx.pgCron,
  });
  ctx.cluster = cluster;
  ctx.cliUrl = cliUrl(cluster.url);
  // What the later steps (and their child processes) get to reach the database.
  ctx.env = { DB_URL: cluster.url, SUPABASE_DB_URL: cluster.url };
  say(`fresh test database on 127.0.0.1:${cluster.port}${ctx.pgCron ? ' (pg_cron preloaded)' : ''}`);
  await applyBootstrap(cluster);
  const { total } = await applyMigrations(cluster);
  const seeded = await applySeed(cluster);
  const helpers = await applyTestHelpers(cluster);
  return passed(`fresh cluster on port ${cluster.port}, ${total} migration(s)${seeded ? ', seed' : ''}${helpers ? ', test helpers' : ''}`);
}

async function main() {
  handleSignals();
  const opts = parseArgs(process.argv.slice(2));
  const selected = STEPS.filter((s) => (!opts.only || opts.only.has(s.id)) && !opts.skip.has(s.id));
  const ctx = { opts, selected, env: {}, pgCron: envBool('TEST_DB_PG_CRON') };
  const results = [];

  const timed = async (id, title, fn) => {
    console.log(`\n${color.bold(`━━ ${id}`)} ${color.dim(title)}`);
    const start = Date.now();
    let result;
    try {
      result = await fn(ctx);
    } catch (err) {
      report(err);
      result = failed(err instanceof UserError ? err.message.split('\n')[0] : String(err));
    }
    if (isStopping()) return null; // interrupted: the tool died because we killed it
    result = { id, ...result, seconds: (Date.now() - start) / 1000 };
    const mark = { passed: color.green('✓ passed'), failed: color.red('✗ failed'), skipped: color.yellow('– skipped') }[result.status];
    console.log(`${mark} ${id}: ${result.detail}`);
    results.push(result);
    return result;
  };

  let dbReady = true;
  if (selected.some((s) => s.db)) dbReady = (await timed('setup', 'fresh database: bootstrap, migrations, seed, test helpers', setupDatabase))?.status === 'passed';
  for (const step of selected) {
    if (isStopping()) return; // Ctrl-C: the shutdown in progress exits for us
    if (step.db && !dbReady) {
      results.push({ id: step.id, status: 'not run', detail: 'the database setup failed', seconds: 0 });
      continue;
    }
    await timed(step.id, step.title, step.run);
  }

  const nPassed = results.filter((r) => r.status === 'passed').length;
  const nFailed = results.filter((r) => r.status === 'failed').length;
  const paint = { passed: color.green, failed: color.red, skipped: color.yellow, 'not run': color.dim };
  console.log(`\n${color.bold('Summary')}`);
  console.log(table([['step', 'result', 'time', 'detail'].map(color.dim), ...results.map((r) => [r.id, paint[r.status](r.status), `${r.seconds.toFixed(1)}s`, r.detail])]));

  console.log(`steps: ${nPassed} passed, ${nFailed} failed`);
  // The last line counts tests: every pgTAP, Deno and vitest test, plus each check step
  // without tests of its own (tsc, types, schema, advisors, lint, setup) as one. A failed step
  // always counts as at least one failure.
  let testsPassed = 0;
  let testsFailed = 0;
  for (const r of results) {
    if (r.status !== 'passed' && r.status !== 'failed' && r.status !== 'not run') continue;
    if (r.tests) {
      testsPassed += r.tests.passed;
      testsFailed += r.status === 'failed' ? Math.max(1, r.tests.failed) : r.tests.failed;
    } else if (r.status === 'passed') testsPassed += 1;
    else testsFailed += 1;
  }
  console.log(`tests: ${testsPassed} passed, ${testsFailed} failed`);
  if (opts.keep && ctx.cluster) {
    console.log(`\n--keep: the test database stays up at DB_URL=${ctx.cluster.url} until Ctrl-C.`);
    setInterval(() => {}, 1 << 30);
    return;
  }
  await shutdown(nFailed > 0 ? 1 : 0);
}

main().catch((err) => {
  report(err);
  console.log('tests: 0 passed, 1 failed');
  shutdown(1);
});

// A throwaway PostgreSQL cluster under .local/<name>/, shared by `npm start`, `npm test`
// and `npm run gen:types`. No Docker: the server binaries come from the distribution's
// PostgreSQL packages (Debian: postgresql-15), and the Supabase platform objects come from
// scripts/bootstrap/supabase-platform.sql.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT, SUPABASE_DIR, envBool } from './env.mjs';
import { run, mustRun, say, warn, UserError } from './run.mjs';
import { pushMigrations } from './supabase.mjs';

// Supabase projects run 15 by default here (supabase/config.toml [db] major_version), so
// prefer it when several versions are installed; anything newer also works.
const MIN_MAJOR = 15;
const PREFERRED_MAJOR = 15;
export const DB_PASSWORD = 'postgres';

const BOOTSTRAP_SQL = path.join(ROOT, 'scripts', 'bootstrap', 'supabase-platform.sql');
const TEST_HELPERS_SQL = path.join(SUPABASE_DIR, 'tests', 'helpers', 'setup.sql');
const SEED_SQL = path.join(SUPABASE_DIR, 'seed.sql');

// ---------------------------------------------------------------------------------------
// Finding the server binaries and the test tools
// ---------------------------------------------------------------------------------------

async function pgVersionOf(bindir) {
  const res = await run(path.join(bindir, 'postgres'), ['--version'], { capture: true }).catch(() => null);
  const m = res?.code === 0 && /PostgreSQL\)?\s+(\d+)(?:\.(\d+))?/.exec(res.stdout);
  return m ? { major: Number(m[1]), version: `${m[1]}.${m[2] ?? 0}` } : null;
}

/** The PostgreSQL >= 15 server binaries: $PG_BINDIR, /usr/lib/postgresql/<v>/bin, pg_config, PATH. */
export async function findPostgres() {
  const candidates = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  const debianRoot = '/usr/lib/postgresql';
  if (fs.existsSync(debianRoot)) {
    const majors = fs.readdirSync(debianRoot).filter((v) => /^\d+$/.test(v)).map(Number);
    majors.sort((a, b) => (a === PREFERRED_MAJOR ? -1 : b === PREFERRED_MAJOR ? 1 : b - a));
    candidates.push(...majors.map((v) => path.join(debianRoot, String(v), 'bin')));
  }
  const pgConfig = await run('pg_config', ['--bindir'], { capture: true }).catch(() => null);
  if (pgConfig?.code === 0) candidates.push(pgConfig.stdout.trim());
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(dir);

  for (const bindir of candidates) {
    if (!fs.existsSync(path.join(bindir, 'postgres'))) continue;
    const v = await pgVersionOf(bindir);
    if (v && v.major >= MIN_MAJOR) {
      const sharedir = await shareDirOf(bindir, v.major);
      return { bindir, sharedir, ...v, bin: (tool) => path.join(bindir, tool) };
    }
    if (process.env.PG_BINDIR === bindir) warn(`PG_BINDIR=${bindir} is not PostgreSQL >= ${MIN_MAJOR}; looking elsewhere`);
  }
  return null;
}

async function shareDirOf(bindir, major) {
  const res = await run(path.join(bindir, 'pg_config'), ['--sharedir'], { capture: true }).catch(() => null);
  return res?.code === 0 ? res.stdout.trim() : `/usr/share/postgresql/${major}`;
}

async function hasCommand(cmd) {
  const res = await run('sh', ['-c', 'command -v "$1"', 'sh', cmd], { capture: true });
  return res.code === 0;
}

// What each tool is, how to detect it, and which Debian package provides it.
const TOOLS = {
  server: { what: 'PostgreSQL >= 15 server', pkg: (v) => `postgresql-${v}` },
  pgtap: { what: 'pgTAP extension', ext: 'pgtap', pkg: (v) => `postgresql-${v}-pgtap` },
  plpgsql_check: { what: 'plpgsql_check extension (supabase db lint)', ext: 'plpgsql_check', pkg: (v) => `postgresql-${v}-plpgsql-check` },
  pg_cron: { what: 'pg_cron extension', ext: 'pg_cron', pkg: (v) => `postgresql-${v}-cron` },
  pg_prove: { what: 'pg_prove (runs pgTAP files)', cmd: 'pg_prove', pkg: () => 'libtap-parser-sourcehandler-pgtap-perl' },
  // Not PostgreSQL's, but what npm test needs beside it: the portal's browser tests, and
  // `ps` for the local stack's tests (a minimal Debian image has neither).
  chromium: { what: 'Chromium (the portal tests, headless)', cmd: 'chromium', pkg: () => 'chromium' },
  ps: { what: 'ps (procps)', cmd: 'ps', pkg: () => 'procps' },
};
export const ALL_TOOLS = Object.keys(TOOLS);
const POSTGRES_TOOLS = ['server', 'pgtap', 'plpgsql_check', 'pg_cron', 'pg_prove'];

/** The Debian packages of the named tools (all by default): what .ci/run installs. */
export function debianPackages(names = ALL_TOOLS, major = PREFERRED_MAJOR) {
  return [...new Set(names.map((t) => TOOLS[t].pkg(major)))];
}

async function missingTools(pg, need) {
  if (!pg) return ['server', ...need.filter((t) => t !== 'server')];
  const missing = [];
  for (const name of need) {
    const t = TOOLS[name];
    if (t.ext && !fs.existsSync(path.join(pg.sharedir, 'extension', `${t.ext}.control`))) missing.push(name);
    if (t.cmd && !(await hasCommand(t.cmd))) missing.push(name);
  }
  return missing;
}

/**
 * Make sure PostgreSQL and the named tools are there. As root on Debian/Ubuntu, install what
 * is missing with apt-get (CI machines start bare); otherwise stop with the exact command.
 */
export async function ensureTools(need = ['server']) {
  let pg = await findPostgres();
  let missing = await missingTools(pg, need);
  if (missing.length === 0) return pg;

  const major = pg?.major ?? PREFERRED_MAJOR;
  // Install the whole PostgreSQL set at once (a second apt run later is slower than one
  // now), and whatever else is asked for.
  const pkgs = debianPackages([...new Set([...POSTGRES_TOOLS, ...need])], major);
  const cmd = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
  const canApt = fs.existsSync('/usr/bin/apt-get');
  if (process.getuid?.() === 0 && canApt && !envBool('NO_APT_INSTALL')) {
    say(`missing: ${missing.map((t) => TOOLS[t].what).join(', ')}; installing with apt-get`);
    if (!pg) preventDefaultCluster();
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await mustRun('apt-get', ['update', '-q'], { env, what: 'apt-get update' });
    await mustRun('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], { env, what: `apt-get install ${pkgs.join(' ')}` });
    pg = await findPostgres();
    missing = await missingTools(pg, need);
    if (missing.length === 0) return pg;
  }
  const lines = missing.map((t) => `  - ${TOOLS[t].what}`).join('\n');
  throw new UserError(
    `Missing tools:\n${lines}\n` +
      (canApt
        ? `Install them with:\n  sudo sh -c '${cmd}'`
        : `Install them (Debian's packages: ${debianPackages(missing, major).join(' ')}); for PostgreSQL >= ${MIN_MAJOR} elsewhere, PG_BINDIR says where it is.`),
  );
}

// Debian's postgresql package creates and starts a system cluster on port 5432 by default;
// a CI box only needs the binaries, so switch that off before the first install.
function preventDefaultCluster() {
  const dir = '/etc/postgresql-common/createcluster.d';
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '50-serial-webhooks-no-main.conf'), 'create_main_cluster = false\n');
  } catch {
    /* not fatal: at worst an idle system cluster exists */
  }
}

// ---------------------------------------------------------------------------------------
// The cluster itself
// ---------------------------------------------------------------------------------------

// initdb, pg_ctl and postgres refuse to run as root. When we are root, run them as the
// `postgres` OS user that the Debian packages create.
let serverUserCache;
async function serverUser() {
  if (process.getuid?.() !== 0) return {};
  if (serverUserCache) return serverUserCache;
  const res = await run('getent', ['passwd', 'postgres'], { capture: true, duringShutdown: true });
  const [, , uid, gid] = res.stdout.trim().split(':');
  if (res.code !== 0 || !uid) {
    throw new UserError('Running as root, but there is no `postgres` OS user to run the server as. Create one (useradd -r postgres) or run as a normal user.');
  }
  serverUserCache = { uid: Number(uid), gid: Number(gid) };
  return serverUserCache;
}

function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function logTail(file, lines = 15) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

export function dbUrl(port, user = 'postgres', password = DB_PASSWORD) {
  return `postgresql://${user}:${password}@127.0.0.1:${port}/postgres`;
}

/**
 * Start (creating if needed) the cluster in `dir` on 127.0.0.1:`port`.
 * Options: fresh (wipe first), pgCron (preload pg_cron), fast (no fsync: data need not
 * survive a crash), portVar (the env var named in the "port taken" error).
 * Returns { url, port, dir, state: 'created'|'reused'|'recreated', reason, stop() }.
 */
export async function startCluster({ pg, dir, port, portVar = 'DB_PORT', fresh = false, pgCron = false, fast = false }) {
  const owner = await serverUser();
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  const ctl = (args) => run(pg.bin('pg_ctl'), ['-D', data, ...args], { capture: true, ...owner });

  // A server left behind by a killed run would hold the port and the files: stop it first.
  if (fs.existsSync(path.join(data, 'postmaster.pid')) && (await ctl(['status'])).code === 0) {
    say(`a server from an earlier run is still running on ${path.relative(ROOT, dir)}; stopping it`);
    await ctl(['stop', '-m', fresh ? 'immediate' : 'fast', '-w', '-t', '60']);
  }

  let state = 'created';
  let reason = '';
  if (fresh) {
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true });
  } else if (fs.existsSync(data)) {
    reason = await clusterProblem(pg, data, owner);
    state = reason ? 'recreated' : 'reused';
    if (reason) fs.rmSync(dir, { recursive: true, force: true });
  }

  if (!(await portIsFree(port))) {
    throw new UserError(
      `Port ${port} on 127.0.0.1 is already in use (another Postgres, or \`npm start\` / \`npm test\` already running?).\n` +
        `Pick another one: ${portVar}=<free port> in .env or the environment.`,
    );
  }

  const settings = { port, pgCron, fast };
  if (state !== 'reused') await initCluster(pg, dir, data, owner);
  writeLocalConf(data, settings, owner);
  let res = await ctl(['start', '-l', log, '-w', '-t', '60', '-s']);
  if (res.code !== 0 && state === 'reused') {
    // The files looked fine but the server would not start on them: start over.
    reason = `it would not start:\n${logTail(log, 5)}`;
    state = 'recreated';
    fs.rmSync(dir, { recursive: true, force: true });
    await initCluster(pg, dir, data, owner);
    writeLocalConf(data, settings, owner);
    res = await ctl(['start', '-l', log, '-w', '-t', '60', '-s']);
  }
  if (res.code !== 0) {
    throw new UserError(`PostgreSQL did not start (pg_ctl exit ${res.code}). Server log ${log}:\n${logTail(log)}`);
  }

  const url = dbUrl(port);
  const cluster = {
    pg,
    url,
    port,
    dir,
    state,
    reason,
    /** Whether the postmaster is still alive (someone may have stopped it behind our back). */
    isRunning() {
      try {
        const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    },
    stop: () => stopCluster(pg, dir),
    /** Start the server again on the same files and settings (after a crash or a stop). */
    async start() {
      const again = await ctl(['start', '-l', log, '-w', '-t', '60', '-s']);
      if (again.code !== 0) throw new UserError(`PostgreSQL did not start (pg_ctl exit ${again.code}). Server log ${log}:\n${logTail(log, 5)}`);
    },
  };
  try {
    await psql(cluster, { sql: 'select 1' });
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/**
 * Stop the server of the cluster in `dir`, if one runs (fast shutdown: open sessions are
 * rolled back). Safe to call at any time, also before or during startCluster(): register it
 * as a shutdown cleanup *before* starting, so a Ctrl-C mid-start leaves nothing behind.
 */
export async function stopCluster(pg, dir) {
  const data = path.join(dir, 'data');
  if (!fs.existsSync(path.join(data, 'postmaster.pid'))) return;
  const owner = await serverUser();
  const ctl = (args) => run(pg.bin('pg_ctl'), ['-D', data, ...args], { capture: true, duringShutdown: true, ...owner });
  const res = await ctl(['stop', '-m', 'fast', '-w', '-t', '60', '-s']);
  if (res.code !== 0 && (await ctl(['status'])).code === 0) await ctl(['stop', '-m', 'immediate', '-w', '-s']);
}

/** Why an existing data directory cannot be reused, or '' when it looks like a healthy cluster. */
async function clusterProblem(pg, data, owner) {
  let version;
  try {
    version = fs.readFileSync(path.join(data, 'PG_VERSION'), 'utf8').trim();
  } catch {
    return 'it has no PG_VERSION file';
  }
  if (Number(version) !== pg.major) return `it was made by PostgreSQL ${version}, and we run ${pg.major}`;
  const res = await run(pg.bin('pg_controldata'), ['-D', data], { capture: true, ...owner });
  if (res.code !== 0 || !/Database cluster state/.test(res.stdout)) return 'its control file is unreadable';
  if (!fs.existsSync(path.join(data, 'local.conf'))) return 'it was not made by these scripts';
  return '';
}

async function initCluster(pg, dir, data, owner) {
  fs.mkdirSync(dir, { recursive: true });
  if (owner.uid !== undefined) {
    fs.chownSync(dir, owner.uid, owner.gid);
    // The postgres user must be able to reach the directory through every parent.
    const reach = await run('sh', ['-c', 'test -w "$1"', 'sh', dir], { capture: true, ...owner });
    if (reach.code !== 0) {
      throw new UserError(
        `The postgres OS user cannot write ${dir} (a parent directory is not traversable?).\n` +
          `Fix the permissions (chmod o+x on the parents) or point the data dir elsewhere (e.g. DB_DATA_DIR=/tmp/serial-db).`,
      );
    }
  }
  const pwfile = path.join(dir, '.pwfile');
  fs.writeFileSync(pwfile, `${DB_PASSWORD}\n`, { mode: 0o600 });
  if (owner.uid !== undefined) fs.chownSync(pwfile, owner.uid, owner.gid);
  try {
    // TCP needs a password (scram), so the URL with postgres:postgres is what everyone uses.
    const base = ['-D', data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8'];
    // Supabase databases use the C.UTF-8 locale; fall back to plain C where it is missing.
    let res = await run(pg.bin('initdb'), [...base, '--locale=C.UTF-8'], { capture: true, ...owner });
    if (res.code !== 0) {
      fs.rmSync(data, { recursive: true, force: true });
      res = await run(pg.bin('initdb'), [...base, '--no-locale'], { capture: true, ...owner });
    }
    if (res.code !== 0) throw new UserError(`initdb failed:\n${res.stdout}${res.stderr}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  // Our settings live in local.conf, rewritten at every start (so the port can change).
  fs.appendFileSync(path.join(data, 'postgresql.conf'), "\n# serial-webhooks local stack\ninclude_if_exists = 'local.conf'\n");
}

function writeLocalConf(data, { port, pgCron, fast }, owner) {
  const lines = [
    '# Written by scripts/lib/cluster.mjs at every start; edits are overwritten.',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    // TCP only: no clash with a system server's socket in /var/run/postgresql.
    "unix_socket_directories = ''",
    "timezone = 'UTC'",
    "log_timezone = 'UTC'",
    "log_line_prefix = '%m [%p] %q%u@%d '",
    'max_connections = 100',
  ];
  if (pgCron) lines.push("shared_preload_libraries = 'pg_cron'", "cron.database_name = 'postgres'", "cron.timezone = 'UTC'");
  // Test clusters are thrown away after the run: durability only costs time there.
  if (fast) lines.push('fsync = off', 'synchronous_commit = off', 'full_page_writes = off');
  const file = path.join(data, 'local.conf');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  if (owner.uid !== undefined) fs.chownSync(file, owner.uid, owner.gid);
}

// ---------------------------------------------------------------------------------------
// Loading SQL
// ---------------------------------------------------------------------------------------

/** Run SQL (a string or a file) with psql, stopping at the first error. Returns stdout. */
export async function psql(cluster, { sql, file, args = [] }) {
  const input = file ? ['-f', file] : ['-c', sql];
  const res = await run(cluster.pg.bin('psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', cluster.url, ...args, ...input], {
    capture: true,
    // Notices (e.g. "already exists, skipping") are noise here; errors still come through.
    env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning', PGCONNECT_TIMEOUT: '10' },
  });
  if (res.code !== 0) {
    throw new UserError(`psql ${file ? path.relative(ROOT, file) : JSON.stringify(sql)} failed:\n${res.stderr.trim()}`);
  }
  return res.stdout;
}

/** Supabase's own roles, auth schema and extensions schema (never part of the migrations). */
export async function applyBootstrap(cluster) {
  await psql(cluster, { file: BOOTSTRAP_SQL });
  say('applied the Supabase platform bootstrap (roles, auth, extensions)');
}

function localMigrationVersions(workdir) {
  const dir = path.join(workdir, 'supabase', 'migrations');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((f) => /^(\d+)_.*\.sql$/.exec(f)?.[1])
    .filter(Boolean)
    .sort();
}

/**
 * Apply supabase/migrations with the real CLI (`supabase db push`), then check in
 * supabase_migrations.schema_migrations that every local file really landed.
 * `workdir` is the folder holding supabase/ (default: this checkout; `npm run schema:dump
 * -- --rev` passes a copy of another revision's).
 */
export async function applyMigrations(cluster, { workdir = ROOT } = {}) {
  const local = localMigrationVersions(workdir);
  if (local.length === 0) {
    say('no migrations in supabase/migrations yet: nothing to apply');
    return { applied: 0, total: 0 };
  }
  const before = await appliedVersions(cluster);
  try {
    await pushMigrations(cluster.url, { workdir });
  } catch (err) {
    // The CLI's advice (migration repair, db pull) is for hosted projects; a local
    // throwaway database that ran migrations this checkout no longer has is simply rebuilt.
    if (/Remote migration versions not found/.test(err.message) && cluster.state === 'reused') {
      err.message += '\n\nThis local database ran migrations that are not in supabase/migrations any more (switched branch, renamed a file?).\nStart over with: npm start -- --fresh';
    }
    throw err;
  }
  const after = await appliedVersions(cluster);
  const missing = local.filter((v) => !after.has(v));
  if (missing.length > 0) {
    throw new UserError(`supabase db push reported success, but these migrations are not recorded as applied: ${missing.join(', ')}`);
  }
  const applied = local.filter((v) => !before.has(v)).length;
  say(`migrations: ${applied} applied now, ${local.length} in total (supabase db push)`);
  return { applied, total: local.length };
}

async function appliedVersions(cluster) {
  const out = await psql(cluster, {
    sql: "select version from supabase_migrations.schema_migrations where to_regclass('supabase_migrations.schema_migrations') is not null",
    args: ['-At'],
  }).catch(() => '');
  return new Set(out.split('\n').filter(Boolean));
}

/**
 * A fresh throwaway database with the platform bootstrap and the migrations of `workdir`
 * only (no seed, no test helpers): what `npm run gen:types` and `npm run schema:dump` read.
 */
export async function startMigratedCluster({ pg, dir, port, portVar, workdir = ROOT }) {
  const cluster = await startCluster({ pg, dir, port, portVar, fresh: true, fast: true });
  try {
    await applyBootstrap(cluster);
    await applyMigrations(cluster, { workdir });
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** supabase/seed.sql, like `supabase db reset` would load it. */
export async function applySeed(cluster) {
  if (!fs.existsSync(SEED_SQL) || fs.readFileSync(SEED_SQL, 'utf8').trim() === '') {
    say('supabase/seed.sql is empty: no seed data');
    return false;
  }
  await psql(cluster, { file: SEED_SQL });
  say('loaded supabase/seed.sql');
  return true;
}

/** The tests-only schema (supabase/tests/helpers/setup.sql), plus pgTAP itself. */
export async function applyTestHelpers(cluster) {
  // Like `supabase test db`: pgTAP lives in the extensions schema, which is on postgres's search_path.
  await psql(cluster, { sql: 'create extension if not exists pgtap with schema extensions' });
  if (!fs.existsSync(TEST_HELPERS_SQL)) {
    say('no supabase/tests/helpers/setup.sql: no test helpers to load');
    return false;
  }
  await psql(cluster, { file: TEST_HELPERS_SQL });
  say('loaded supabase/tests/helpers/setup.sql');
  return true;
}

#!/usr/bin/env node
// `npm run schema:dump`: regenerate supabase/schema.sql, the normalized schema dump of what
// the migrations build (scripts/lib/schema-dump.mjs says what is in it and what is left out).
//
//   npm run schema:dump                        write supabase/schema.sql from supabase/migrations
//   npm run schema:dump -- --rev <rev>         dump the migrations of a git revision instead, to
//                                              .local/schema-<commit>.sql (or --out <file>)
//   npm run schema:dump -- --diff <rev>        compare <rev>'s migrations with this checkout's
//                                              (schema and the rows migrations insert); exit 1
//                                              and a unified diff when they differ
//   npm run schema:dump -- --diff <a> --against <b>   the same between two revisions
//
// Each dump builds a fresh throwaway database (.local/schema-dump-db, SCHEMA_DUMP_DB_PORT,
// default 54362): bootstrap + migrations only, never the seed or the test helpers.
// `npm test` (step "schema") fails when the committed file differs from what this writes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCAL_DIR, ROOT, envDir, envPort } from './lib/env.mjs';
import { mustRun, run, say, writeGenerated, UserError } from './lib/run.mjs';
import { handleSignals, onShutdown, report, shutdown } from './lib/lifecycle.mjs';
import { ensureTools, startMigratedCluster, stopCluster } from './lib/cluster.mjs';
import { SCHEMA_FILE, dumpSchema } from './lib/schema-dump.mjs';

function parseArgs(argv) {
  const opts = { rev: null, out: null, diff: null, against: null };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const value = () => inline ?? argv[++i] ?? '';
    if (flag === '--rev') opts.rev = value();
    else if (flag === '--out') opts.out = path.resolve(value());
    else if (flag === '--diff') opts.diff = value();
    else if (flag === '--against') opts.against = value();
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: npm run schema:dump -- [--rev <rev> [--out <file>] | --diff <rev> [--against <rev>]]');
      process.exit(0);
    } else throw new UserError(`unknown argument ${argv[i]} (try --help)`);
  }
  if (opts.rev === '' || opts.diff === '' || opts.against === '') throw new UserError('--rev, --diff and --against need a git revision, e.g. --diff main');
  if (opts.against && !opts.diff) throw new UserError('--against goes with --diff');
  if (opts.rev && opts.diff) throw new UserError('use either --rev or --diff');
  return opts;
}

/** A temporary folder holding supabase/ (config.toml and migrations) as they are at `rev`. */
async function checkoutMigrations(rev) {
  const git = (args) => mustRun('git', args, { cwd: ROOT, what: `git ${args.join(' ')}` });
  const commit = (await git(['rev-parse', '--verify', `${rev}^{commit}`])).stdout.trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `schema-dump-${commit.slice(0, 7)}-`));
  onShutdown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files = (await git(['ls-tree', '-r', '--name-only', commit, '--', 'supabase/config.toml', 'supabase/migrations/'])).stdout.split('\n').filter(Boolean);
  if (!files.some((f) => f.startsWith('supabase/migrations/'))) throw new UserError(`${rev} has no supabase/migrations`);
  for (const file of files) {
    const target = path.join(dir, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, (await git(['show', `${commit}:${file}`])).stdout);
  }
  return { dir, commit, label: `${rev} (${commit.slice(0, 7)})` };
}

/** Build a throwaway database from the migrations in `workdir` and dump it. */
async function dumpMigrations(pg, workdir, { data = false } = {}) {
  const dir = envDir('SCHEMA_DUMP_DB_DATA_DIR', '.local/schema-dump-db');
  onShutdown(() => stopCluster(pg, dir));
  const cluster = await startMigratedCluster({ pg, dir, port: envPort('SCHEMA_DUMP_DB_PORT', 54362), portVar: 'SCHEMA_DUMP_DB_PORT', workdir });
  try {
    return await dumpSchema(cluster, { data });
  } finally {
    await cluster.stop();
  }
}

async function main() {
  handleSignals();
  const opts = parseArgs(process.argv.slice(2));
  const pg = await ensureTools(['server']);

  if (opts.diff) {
    const old = await checkoutMigrations(opts.diff);
    say(`dumping the migrations of ${old.label}`);
    const before = await dumpMigrations(pg, old.dir, { data: true });
    const now = opts.against ? await checkoutMigrations(opts.against) : { dir: ROOT, label: 'this checkout' };
    say(`dumping the migrations of ${now.label}`);
    const after = await dumpMigrations(pg, now.dir, { data: true });
    if (before === after) {
      say(`identical: the migrations of ${old.label} and of ${now.label} build the same database (${after.split('\n').length} lines of schema and rows)`);
      return shutdown(0);
    }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'schema-diff-'));
    onShutdown(() => fs.rmSync(tmp, { recursive: true, force: true }));
    fs.writeFileSync(path.join(tmp, 'before.sql'), before);
    fs.writeFileSync(path.join(tmp, 'after.sql'), after);
    const diff = await run('diff', ['-u', '--label', `migrations of ${old.label}`, '--label', `migrations of ${now.label}`, path.join(tmp, 'before.sql'), path.join(tmp, 'after.sql')], { capture: true });
    process.stdout.write(diff.stdout);
    say('they differ (above)');
    return shutdown(1);
  }

  if (opts.rev) {
    const old = await checkoutMigrations(opts.rev);
    say(`dumping the migrations of ${old.label}`);
    const out = opts.out ?? path.join(LOCAL_DIR, `schema-${old.commit.slice(0, 7)}.sql`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, await dumpMigrations(pg, old.dir));
    say(`wrote ${path.relative(process.cwd(), out)}`);
    return shutdown(0);
  }

  const target = opts.out ?? SCHEMA_FILE;
  writeGenerated(target, await dumpMigrations(pg, ROOT), path.relative(ROOT, target));
  await shutdown(0);
}

main().catch((err) => {
  report(err);
  shutdown(1);
});

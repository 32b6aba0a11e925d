// The real Supabase CLI (npm `supabase`, pinned in package.json), pointed at our local
// cluster with --remote=<db url>. CLI 3.x still accepts --db-url but prints a deprecation
// warning ("will be removed in v4"), so we use --remote=<url> throughout.
import path from 'node:path';
import { BIN, ROOT } from './env.mjs';
import { run, UserError } from './run.mjs';

const CLI = path.join(BIN, 'supabase');

/**
 * The URL to hand the CLI. Without an explicit sslmode it tries TLS first and, on our
 * plain local server, prints a "Connected ... without TLS" warning -- on stdout for
 * `gen types`, where it would end up inside the generated file.
 */
export function cliUrl(url) {
  const u = new URL(url);
  if (!u.searchParams.has('sslmode') && ['127.0.0.1', 'localhost', '::1'].includes(u.hostname)) u.searchParams.set('sslmode', 'disable');
  return u.toString();
}

/** Run `supabase <args>` against the supabase/ folder in `workdir` (default: this checkout), never prompting. */
export function supabase(args, { workdir = ROOT, ...opts } = {}) {
  return run(CLI, [...args, '--workdir', workdir], {
    capture: true,
    cwd: workdir,
    // CI=true and --yes keep it from ever waiting for an answer on a terminal.
    env: { ...process.env, CI: 'true', DO_NOT_TRACK: '1', ...opts.env },
    ...opts,
  });
}

function failure(what, res) {
  return new UserError(`${what} failed (exit ${res.code}):\n${`${res.stdout}\n${res.stderr}`.trim()}`);
}

/** `supabase db push`: every migration not yet in supabase_migrations.schema_migrations. */
export async function pushMigrations(url, { workdir } = {}) {
  // --include-all: also apply files older than the newest applied one (branch merges).
  // --skip-vault: there is no Vault locally; config.toml has no vault secrets anyway.
  const res = await supabase(['db', 'push', `--remote=${cliUrl(url)}`, '--include-all', '--skip-vault', '--yes'], { workdir });
  if (res.code !== 0) throw failure('supabase db push', res);
  return res;
}

export const TYPES_FILE = path.join(ROOT, 'src', 'database.types.ts');

/** `supabase gen types --lang=typescript` for the public schema, as a string. */
export async function genTypes(url) {
  const res = await supabase(['gen', 'types', '--lang=typescript', `--remote=${cliUrl(url)}`, '--schema', 'public']);
  if (res.code !== 0 || !res.stdout.trim()) throw failure('supabase gen types', res);
  return res.stdout;
}

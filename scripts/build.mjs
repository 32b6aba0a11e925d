#!/usr/bin/env node
// `npm run build`: what the package ships and what the local gateway serves.
//   1. tsc -p tsconfig.build.json   src/index.ts and src/portal/index.ts -> dist/ (JavaScript + .d.ts)
//   2. src/portal/styles.css        -> dist/portal/styles.css
//   3. vite build                   the standalone page (src/portal-app, on the built dist/portal) -> dist/portal-app
// ensureBuilt() rebuilds only when an input changed since the last build (a hash of the
// inputs in dist/.build-stamp): `npm start` and the tests call it, so dist/ is never stale.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { BIN, isMain, ROOT } from './lib/env.mjs';
import { run, say, UserError } from './lib/run.mjs';

export const DIST = path.join(ROOT, 'dist');
export const PORTAL_APP_DIR = path.join(DIST, 'portal-app');
const STAMP = path.join(DIST, '.build-stamp');
const INPUTS = ['src', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'vite.portal.config.mjs', 'scripts/build.mjs'];

function files(entry) {
  const full = path.join(ROOT, entry);
  if (!fs.existsSync(full)) return [];
  if (fs.statSync(full).isFile()) return [full];
  return fs.readdirSync(full, { withFileTypes: true }).flatMap((e) => files(path.join(entry, e.name))).sort();
}

function inputHash() {
  const hash = crypto.createHash('sha256');
  for (const file of INPUTS.flatMap(files)) {
    hash.update(path.relative(ROOT, file));
    hash.update(fs.readFileSync(file));
  }
  return hash.digest('hex');
}

export function isBuilt() {
  return fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8').trim() === inputHash();
}

/** Gzipped size of every JavaScript file of the standalone page (what a browser downloads). */
export function portalJsSizes() {
  const assets = path.join(PORTAL_APP_DIR, 'assets');
  if (!fs.existsSync(assets)) return { files: [], gzipBytes: 0, rawBytes: 0 };
  const list = fs.readdirSync(assets).filter((f) => f.endsWith('.js')).map((f) => {
    const body = fs.readFileSync(path.join(assets, f));
    return { file: f, rawBytes: body.length, gzipBytes: zlib.gzipSync(body, { level: 9 }).length };
  });
  return {
    files: list,
    gzipBytes: list.reduce((n, f) => n + f.gzipBytes, 0),
    rawBytes: list.reduce((n, f) => n + f.rawBytes, 0),
  };
}

export async function build({ quiet = false } = {}) {
  const started = Date.now();
  fs.rmSync(DIST, { recursive: true, force: true });
  const tsc = await run(path.join(BIN, 'tsc'), ['-p', 'tsconfig.build.json', '--pretty', 'false'], { cwd: ROOT, capture: true });
  if (tsc.code !== 0) throw new UserError(`tsc -p tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`);
  fs.copyFileSync(path.join(ROOT, 'src', 'portal', 'styles.css'), path.join(DIST, 'portal', 'styles.css'));
  const { build: viteBuild } = await import('vite');
  await viteBuild({ configFile: path.join(ROOT, 'vite.portal.config.mjs'), logLevel: quiet ? 'error' : 'warn' });
  fs.writeFileSync(STAMP, `${inputHash()}\n`);
  const sizes = portalJsSizes();
  if (!quiet) {
    say(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s: the client module, the portal component, and the standalone page`);
    say(`portal page JavaScript: ${(sizes.gzipBytes / 1024).toFixed(1)} KB gzipped (${(sizes.rawBytes / 1024).toFixed(1)} KB raw, ${sizes.files.length} file(s))`);
  }
  return sizes;
}

/** Builds when dist/ is missing or older than its inputs; says which. */
export async function ensureBuilt() {
  if (isBuilt()) return false;
  say(fs.existsSync(STAMP) ? 'sources changed since the last build: npm run build' : 'no build yet: npm run build');
  await build();
  return true;
}

if (isMain(import.meta.url)) {
  build().catch((err) => {
    console.error(err instanceof UserError ? err.message : err);
    process.exit(1);
  });
}

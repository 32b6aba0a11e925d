#!/usr/bin/env node
// `npm run gen:types`: regenerate src/database.types.ts from the migrations.
//
// By default it builds a fresh throwaway database (.local/gen-types-db, port 54342:
// bootstrap + migrations), generates the types with `supabase gen types`, and stops it.
// With DB_URL set it uses that database instead, e.g. the one `npm start` runs:
//   DB_URL=postgresql://postgres:postgres@127.0.0.1:54322/postgres npm run gen:types
// `npm test` (step "types") fails when the committed file differs from what this writes.
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, envDir, envPort, envStr } from './lib/env.mjs';
import { say } from './lib/run.mjs';
import { handleSignals, onShutdown, report, shutdown } from './lib/lifecycle.mjs';
import { ensureTools, startCluster, stopCluster, applyBootstrap, applyMigrations } from './lib/cluster.mjs';
import { genTypes } from './lib/supabase.mjs';

const TYPES_FILE = path.join(ROOT, 'src', 'database.types.ts');

async function main() {
  handleSignals();
  let url = envStr('DB_URL', '');
  if (url) {
    say(`generating from DB_URL (${new URL(url).host})`);
  } else {
    const pg = await ensureTools(['server']);
    const dir = envDir('GEN_TYPES_DB_DATA_DIR', '.local/gen-types-db');
    onShutdown(() => stopCluster(pg, dir));
    const cluster = await startCluster({
      pg,
      dir,
      port: envPort('GEN_TYPES_DB_PORT', 54342),
      portVar: 'GEN_TYPES_DB_PORT',
      fresh: true,
      fast: true,
    });
    say(`fresh throwaway database on 127.0.0.1:${cluster.port}`);
    await applyBootstrap(cluster);
    await applyMigrations(cluster);
    url = cluster.url;
  }
  const types = await genTypes(url);
  const before = fs.existsSync(TYPES_FILE) ? fs.readFileSync(TYPES_FILE, 'utf8') : null;
  if (before === types) {
    say(`${path.relative(ROOT, TYPES_FILE)} is already up to date`);
  } else {
    fs.mkdirSync(path.dirname(TYPES_FILE), { recursive: true });
    fs.writeFileSync(TYPES_FILE, types);
    say(`wrote ${path.relative(ROOT, TYPES_FILE)} (${before === null ? 'new' : 'changed'}): commit it with the migration`);
  }
  await shutdown(0);
}

main().catch((err) => {
  report(err);
  shutdown(1);
});

#!/usr/bin/env node
// `npm run gen:types`: regenerate src/database.types.ts (supabase gen types) and
// src/database.rules.ts (the rules' wording, scripts/lib/rules.mjs) from the migrations.
//
// By default it builds a fresh throwaway database (.local/gen-types-db, port 54342:
// bootstrap + migrations), generates the types with `supabase gen types`, and stops it.
// With DB_URL set it uses that database instead, e.g. the one `npm start` runs:
//   DB_URL=postgresql://postgres:postgres@127.0.0.1:54322/postgres npm run gen:types
// `npm test` (step "types") fails when a committed file differs from what this writes.
import path from 'node:path';
import { ROOT, envDir, envPort, envStr } from './lib/env.mjs';
import { say, writeGenerated } from './lib/run.mjs';
import { handleSignals, onShutdown, report, shutdown } from './lib/lifecycle.mjs';
import { ensureTools, startMigratedCluster, stopCluster } from './lib/cluster.mjs';
import { TYPES_FILE, genTypes } from './lib/supabase.mjs';
import { RULES_FILE, genRules } from './lib/rules.mjs';

async function main() {
  handleSignals();
  let url = envStr('DB_URL', '');
  if (url) {
    say(`generating from DB_URL (${new URL(url).host})`);
  } else {
    const pg = await ensureTools(['server']);
    const dir = envDir('GEN_TYPES_DB_DATA_DIR', '.local/gen-types-db');
    onShutdown(() => stopCluster(pg, dir));
    const cluster = await startMigratedCluster({ pg, dir, port: envPort('GEN_TYPES_DB_PORT', 54342), portVar: 'GEN_TYPES_DB_PORT' });
    say(`fresh throwaway database on 127.0.0.1:${cluster.port}`);
    url = cluster.url;
  }
  for (const [file, text] of [[TYPES_FILE, await genTypes(url)], [RULES_FILE, await genRules(url)]]) {
    writeGenerated(file, text, path.relative(ROOT, file));
  }
  await shutdown(0);
}

main().catch((err) => {
  report(err);
  shutdown(1);
});

#!/usr/bin/env node
// `npm start`: the local stack, in the foreground, without Docker. Ctrl-C stops all of it.
//
//   npm start                 reuse .local/db if it is there (new migrations are applied)
//   npm start -- --fresh      throw the database away and start from scratch (reloads the seed)
//
// Knobs (environment or .env): DB_PORT, DB_DATA_DIR, DB_FRESH, DB_PG_CRON, PG_BINDIR.
// Once everything is up, the connection settings are written to .local/stack.env
// (KEY=VALUE lines) for other tools, and removed again when the stack stops.
import fs from 'node:fs';
import path from 'node:path';
import { LOCAL_DIR, ROOT, envBool, envDir, envPort, envStr } from './lib/env.mjs';
import { say, table, color } from './lib/run.mjs';
import { handleSignals, markStackReady, onShutdown, report, shutdown, superviseDaemon } from './lib/lifecycle.mjs';
import { ensureTools, startCluster, stopCluster, applyBootstrap, applyMigrations, applySeed } from './lib/cluster.mjs';
import { startApi, startDispatcher } from './lib/services.mjs';

// STACK_ENV_FILE moves it (the smoke test does, to leave a developer's running stack alone).
const STACK_ENV = path.resolve(ROOT, envStr('STACK_ENV_FILE', path.join(LOCAL_DIR, 'stack.env')));

const config = {
  dbPort: envPort('DB_PORT', 54322),
  dbDir: envDir('DB_DATA_DIR', '.local/db'),
  fresh: process.argv.includes('--fresh') || envBool('DB_FRESH'),
  pgCron: envBool('DB_PG_CRON'),
};

// The parts of the stack, in start order. Each gets what the earlier ones exported (ctx.env)
// and returns { env: {KEY: value} } to add to .local/stack.env. PostgREST, the gateway and
// the dispatcher worker slot in after the database (see lifecycle.startService()).
const parts = [
  { name: 'database', start: startDatabase },
  { name: 'API (PostgREST + gateway)', start: startApi },
  { name: 'webhook dispatcher', start: startDispatcher },
];

async function startDatabase(ctx) {
  const pg = await ensureTools(['server', ...(config.pgCron ? ['pg_cron'] : [])]);
  say(`PostgreSQL ${pg.version} (${pg.bindir})`);
  const rel = path.relative(ROOT, config.dbDir);
  // Registered before starting, so a Ctrl-C in the middle of the start stops it too.
  onShutdown(async () => {
    say('stopping PostgreSQL');
    await stopCluster(pg, config.dbDir);
  });
  const cluster = await startCluster({
    pg,
    dir: config.dbDir,
    port: config.dbPort,
    portVar: 'DB_PORT',
    fresh: config.fresh,
    pgCron: config.pgCron,
  });
  ctx.cluster = cluster;
  if (cluster.state === 'reused') say(`reusing the database in ${rel} (npm start -- --fresh starts over)`);
  else if (cluster.state === 'recreated') say(`the database in ${rel} could not be reused (${cluster.reason}); recreated it`);
  else say(`created a new database in ${rel}`);
  say(`PostgreSQL listening on 127.0.0.1:${cluster.port}${config.pgCron ? ' (pg_cron preloaded)' : ''}`);

  await applyBootstrap(cluster);
  await applyMigrations(cluster);
  // The seed is for a new database only: reloading it on every start would duplicate rows.
  if (cluster.state === 'reused') say('seed: not reloaded into a reused database');
  else await applySeed(cluster);
  return { env: { DB_URL: cluster.url } };
}

function writeStackEnv(env) {
  const lines = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const header = `# Written by \`npm start\` (${new Date().toISOString()}); removed when it stops.`;
  fs.mkdirSync(LOCAL_DIR, { recursive: true });
  fs.writeFileSync(STACK_ENV, [header, ...lines, ''].join('\n'));
}

async function main() {
  handleSignals();
  say(`starting the local stack${config.fresh ? ' (fresh)' : ''}`);
  const ctx = { env: {} };
  for (const part of parts) {
    say(`starting ${part.name}`);
    const out = await part.start(ctx);
    Object.assign(ctx.env, out?.env);
  }
  writeStackEnv(ctx.env);
  onShutdown(() => fs.rmSync(STACK_ENV, { force: true }));

  console.log(`\n${color.bold('Local stack is ready')} (${path.relative(ROOT, STACK_ENV)}):\n`);
  console.log(table(Object.entries(ctx.env).map(([k, v]) => [`  ${k}`, v])));
  console.log(`\n${color.dim('Ctrl-C stops everything.')}`);

  // Stay up: from now on a service that dies is restarted, and so is the database if it
  // stops underneath us (a crash, someone's pg_ctl stop); PostgREST and the dispatcher
  // reconnect to it by themselves.
  markStackReady();
  superviseDaemon('PostgreSQL', { isRunning: () => ctx.cluster.isRunning(), start: () => ctx.cluster.start() });
}

main().catch((err) => {
  report(err);
  shutdown(1);
});

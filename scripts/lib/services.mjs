// The API half of the local stack, started after the database: PostgREST, the gateway on
// SUPABASE_URL, and the webhook dispatcher (worker mode, plus HTTP mode behind
// /functions/v1/webhook-dispatcher), each a child that `npm start` stops on Ctrl-C.
import path from 'node:path';
import { LOCAL_DIR, SUPABASE_DIR, denoExecutable, envPort, envStr } from './env.mjs';
import { say, UserError } from './run.mjs';
import { onShutdown, portAccepts, startService, waitFor } from './lifecycle.mjs';
import { startGateway } from './gateway.mjs';
import { apiKeys, jwtSecret } from './keys.mjs';
import { postgrestBinary, writePostgrestConfig } from './postgrest.mjs';
import { readTask } from '../../supabase/functions/tasks.mjs';
import { ensureBuilt, PORTAL_APP_DIR } from '../build.mjs';

const FUNCTIONS_DIR = path.join(SUPABASE_DIR, 'functions');

async function ensurePortFree(port, variable) {
  if (await portAccepts(port)) {
    throw new UserError(`Port ${port} on 127.0.0.1 is already in use. Pick another one: ${variable}=<free port> in .env or the environment.`);
  }
}

/** PostgREST + gateway. Needs ctx.cluster; returns the env for .local/stack.env. */
export async function startApi(ctx) {
  const restPort = envPort('REST_PORT', 54323);
  const gatewayPort = envPort('API_PORT', 54321);
  const functionPort = envPort('FUNCTIONS_PORT', 54324);
  await ensurePortFree(restPort, 'REST_PORT');
  await ensurePortFree(restPort + 100, 'REST_PORT');
  await ensurePortFree(gatewayPort, 'API_PORT');

  const secret = jwtSecret();
  const keys = await apiKeys(secret);
  const authenticator = new URL(ctx.cluster.url);
  authenticator.username = 'authenticator';
  const configPath = path.join(LOCAL_DIR, 'postgrest.conf');
  writePostgrestConfig({ configPath, dbUrl: authenticator.toString(), port: restPort, adminPort: restPort + 100, jwtSecret: secret });
  startService('postgrest', postgrestBinary(), [configPath]);
  await waitFor('PostgREST', async () => (await fetch(`http://127.0.0.1:${restPort + 100}/ready`)).ok);
  say(`PostgREST 12 on 127.0.0.1:${restPort} (schema cache loaded)`);

  // The portal page the gateway serves at /portal (built now if its sources changed).
  await ensureBuilt();
  const gateway = await startGateway({
    port: gatewayPort,
    routes: { rest: `http://127.0.0.1:${restPort}`, functions: { 'webhook-dispatcher': `http://127.0.0.1:${functionPort}` } },
    apiKeys: [keys.anonKey, keys.serviceRoleKey],
    portal: { dir: PORTAL_APP_DIR, anonKey: keys.anonKey },
  });
  onShutdown(() => new Promise((resolve) => gateway.close(() => resolve())));
  say(`gateway on http://127.0.0.1:${gatewayPort} (/rest/v1 -> PostgREST, /functions/v1/webhook-dispatcher -> Deno, /portal -> the portal page)`);

  return {
    env: {
      SUPABASE_URL: `http://127.0.0.1:${gatewayPort}`,
      SUPABASE_ANON_KEY: keys.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
      JWT_SECRET: secret,
      PORTAL_URL: `http://127.0.0.1:${gatewayPort}/portal`,
    },
  };
}

/**
 * The dispatcher twice over one codebase: a worker (LISTEN, delivers as soon as something
 * commits) and the HTTP mode Supabase runs, reachable through the gateway.
 */
export async function startDispatcher(ctx) {
  const functionPort = envPort('FUNCTIONS_PORT', 54324);
  const demoPort = envPort('DEMO_RECEIVER_PORT', 54399);
  await ensurePortFree(functionPort, 'FUNCTIONS_PORT');
  const env = {
    ...process.env,
    SUPABASE_DB_URL: ctx.cluster.url,
    SUPABASE_SERVICE_ROLE_KEY: ctx.env.SUPABASE_SERVICE_ROLE_KEY,
    // Local receivers (the demo's, and whatever the developer adds) are loopback: allow them by exact host:port.
    WEBHOOK_ALLOWED_TARGETS: envStr('WEBHOOK_ALLOWED_TARGETS', `127.0.0.1:${demoPort},localhost:${demoPort}`),
    NO_COLOR: '1',
  };
  // The start commands are the `worker` and `serve` tasks of supabase/functions/deno.json,
  // spawned directly (no `deno task` process in between; see tasks.mjs there).
  const deno = denoExecutable();
  const worker = dispatcherWorkerCommand({ env, workerId: 'local-worker' });
  startService('dispatcher', worker.cmd, worker.args, { cwd: worker.cwd, env: worker.env });
  const serve = readTask('serve');
  startService('function', deno, serve.args, {
    cwd: FUNCTIONS_DIR,
    env: { ...env, ...serve.env, PORT: String(functionPort), WEBHOOK_WORKER_ID: 'local-http' },
  });
  await waitFor('the dispatcher function', () => portAccepts(functionPort), { timeoutMs: 120_000 });
  say(`webhook dispatcher: worker running; HTTP mode on 127.0.0.1:${functionPort}; allowed targets ${env.WEBHOOK_ALLOWED_TARGETS}`);
  return { env: { DEMO_RECEIVER_PORT: String(demoPort), WEBHOOK_ALLOWED_TARGETS: env.WEBHOOK_ALLOWED_TARGETS } };
}

/**
 * The `worker` task of supabase/functions/deno.json as a command to spawn, for `npm start`
 * and for tests that need deliveries to really go out (the portal's browser tests). `env`
 * must hold SUPABASE_DB_URL and WEBHOOK_ALLOWED_TARGETS. Returns { cmd, args, cwd, env }.
 */
export function dispatcherWorkerCommand({ env, workerId }) {
  const worker = readTask('worker');
  return {
    cmd: denoExecutable(),
    args: worker.args,
    cwd: FUNCTIONS_DIR,
    env: { ...env, ...worker.env, WEBHOOK_WORKER_ID: workerId },
  };
}

// Orderly shutdown for `npm start` and `npm test`: on Ctrl-C, SIGTERM, an error or a
// service dying, end every child process, then run the cleanups (stop the cluster, ...)
// in reverse order of registration, then exit. Nothing is left running behind us.
import net from 'node:net';
import { run, killAll, say, warn, color, UserError } from './run.mjs';

const cleanups = [];
let stopping = null;

/** Register an async cleanup to run at shutdown (last registered runs first). */
export function onShutdown(fn) {
  cleanups.push(fn);
}

export function isStopping() {
  return stopping !== null;
}

/** End children, run cleanups, exit with `code`. Idempotent: later calls share the first. */
export function shutdown(code = 0) {
  if (stopping) return stopping;
  stopping = (async () => {
    await killAll('SIGTERM');
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        warn(`cleanup failed: ${err.message}`);
      }
    }
    process.exit(code);
  })();
  return stopping;
}

/** Print an error the way users should see it (UserError: just the message). */
export function report(err) {
  const msg = err instanceof UserError ? err.message : (err?.stack ?? String(err));
  console.error(`${color.red('✗')} ${msg}`);
}

/** Install the signal and crash handlers; `exitCodes` maps signal names to exit codes. */
export function handleSignals() {
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  for (const sig of Object.keys(codes)) {
    process.on(sig, () => {
      if (stopping) {
        warn('already stopping, please wait (the database is shutting down)');
        return;
      }
      console.log();
      say(`${sig} received: stopping`);
      shutdown(codes[sig]);
    });
  }
  // A closed pipe on our own output (e.g. `npm start | head`) must not abort the shutdown.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const crash = (err) => {
    report(err);
    shutdown(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

/**
 * Start a long-running child (PostgREST, the gateway, the Deno worker...). Its output is
 * prefixed with `[name]`. If it exits while we are not stopping, the whole stack stops:
 * a half-running stack is worse than a clear failure.
 */
export function startService(name, cmd, args, opts = {}) {
  const done = run(cmd, args, { prefix: name, ...opts });
  done.then(
    (res) => {
      if (stopping) return;
      warn(`${name} exited unexpectedly (exit ${res.code}${res.signal ? `, ${res.signal}` : ''}); stopping everything`);
      shutdown(1);
    },
    (err) => {
      if (stopping) return;
      report(err);
      shutdown(1);
    },
  );
  return done;
}

/** Poll `check` (async, truthy when ready) until it passes or `timeoutMs` elapses. */
export async function waitFor(what, check, { timeoutMs = 30000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new UserError(`${what} was not ready after ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portAccepts(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
  });
}

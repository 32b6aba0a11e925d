// Orderly shutdown for `npm start` and `npm test`: on Ctrl-C, SIGTERM or an error, end
// every child process, then run the cleanups (stop the cluster, ...) in reverse order of
// registration, then exit. Nothing is left running behind us.
//
// Supervision for `npm start`: until the stack is ready, a service that exits stops
// everything (a clear failure at start). Once it is ready (markStackReady()), a service
// that dies is restarted with backoff, and so is PostgreSQL (superviseDaemon()); the
// log says what happened each time. Ctrl-C still stops everything.
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

/** Install the signal and crash handlers: a signal exits with 128 + its number, after shutdown. */
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

// Restart policy: 1 s, 2 s, 4 s ... up to 30 s between attempts. A run that lasted
// STABLE_MS counts as healthy and starts the count over; after MAX_QUICK_FAILURES quick
// failures in a row something is plainly broken, and the stack stops with that message.
const STABLE_MS = 30_000;
const MAX_QUICK_FAILURES = 10;
const backoffMs = (failures) => Math.min(30_000, 1000 * 2 ** (failures - 1));
let ready = false;

/** From now on, services and PostgreSQL that die are restarted instead of stopping the stack. */
export function markStackReady() {
  ready = true;
}

/**
 * Start a long-running child (PostgREST, the Deno worker...). Its output is prefixed with
 * `[name]`. If it exits while the stack is starting, everything stops; once the stack is
 * ready, it is started again after a backoff (see STABLE_MS, MAX_QUICK_FAILURES).
 */
export function startService(name, cmd, args, opts = {}) {
  let failures = 0;
  let restarts = 0;
  const launch = () => {
    const startedAt = Date.now();
    const done = run(cmd, args, { prefix: name, ...opts });
    done.then(
      (res) => {
        if (stopping) return;
        const why = `exit ${res.code}${res.signal ? `, ${res.signal}` : ''}`;
        if (!ready) {
          warn(`${name} exited while the stack was starting (${why}); stopping everything`);
          shutdown(1);
          return;
        }
        failures = Date.now() - startedAt >= STABLE_MS ? 1 : failures + 1;
        if (failures > MAX_QUICK_FAILURES) {
          warn(`${name} exited ${MAX_QUICK_FAILURES + 1} times in a row, each within ${STABLE_MS / 1000} s of starting (last: ${why}); stopping everything`);
          shutdown(1);
          return;
        }
        const delay = backoffMs(failures);
        warn(`${name} exited unexpectedly (${why}); restarting it in ${delay / 1000} s`);
        setTimeout(() => {
          if (stopping) return;
          restarts += 1;
          say(`restarting ${name} (restart ${restarts})`);
          launch();
        }, delay);
      },
      (err) => {
        if (stopping) return;
        report(err);
        shutdown(1);
      },
    );
  };
  launch();
}

/**
 * Keep a server that is not our child running (PostgreSQL: a daemon of pg_ctl). Checked
 * every second; when it is down for `graceMs` (someone's `pg_ctl restart` gets that long
 * to bring it back), `start()` is called, with the same backoff and limit as services.
 */
export function superviseDaemon(name, { isRunning, start, intervalMs = 1000, graceMs = 3000 }) {
  let downSince = null;
  let failures = 0;
  let nextTry = 0;
  let busy = false;
  const timer = setInterval(async () => {
    if (stopping || busy) return;
    if (isRunning()) {
      if (downSince !== null) say(`${name} is running again`);
      downSince = null;
      failures = 0;
      return;
    }
    const now = Date.now();
    if (downSince === null) {
      downSince = now;
      warn(`${name} stopped unexpectedly; starting it again unless it is back within ${graceMs / 1000} s`);
      return;
    }
    if (now - downSince < graceMs || now < nextTry) return;
    busy = true;
    try {
      say(`starting ${name} again`);
      await start();
    } catch (err) {
      if (stopping) return;
      failures += 1;
      if (failures > MAX_QUICK_FAILURES) {
        report(err);
        warn(`${name} could not be started ${failures} times in a row; stopping everything`);
        shutdown(1);
        return;
      }
      const delay = backoffMs(failures);
      nextTry = Date.now() + delay;
      warn(`${name} did not start (${String(err.message).split('\n')[0]}); trying again in ${delay / 1000} s`);
    } finally {
      busy = false;
    }
  }, intervalMs);
  onShutdown(() => clearInterval(timer));
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

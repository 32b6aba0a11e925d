// Worker mode, for local and self-hosted use: a long-running process around the
// engine's claim loop. It LISTENs for new deliveries (a committing transaction NOTIFYs
// when no dispatcher is awake and a worker has said within 15 s that it listens: it says
// so when its LISTEN is in place and every 5 s, and looks for work right after each time;
// migration 20261129150100), the loop sleeps until the next retry is due, and on
// SIGTERM/SIGINT attempts in flight finish and are recorded before it exits. A database
// outage (at start too) stops the loop; the worker starts it again a second later, and
// the engine first writes what the outage left unwritten. Stopped while such results
// wait, it keeps trying to write them (only that) for up to STOP_WRITES_MS before it
// exits: each one it writes is an attempt logged and a delivery not sent again.
import type postgres from "postgres";
import { type DispatchEngine, type DrainCounts, emptyCounts } from "../_shared/dispatch/engine.ts";

export interface WorkerDeps {
  engine: Pick<DispatchEngine, "run" | "poke" | "totals" | "unwritten">;
  sql: postgres.Sql;
  log?: (message: string) => void;
}

/** How often the worker logs what it delivered since the last line (when anything). */
const REPORT_EVERY_MS = 5_000;
/** How often it says that it listens (writes NOTIFY within 15 s of the last time). */
const LISTENING_NOTE_EVERY_MS = 5_000;
/** How long a stopping dispatcher keeps trying to write what an outage left unwritten, after
 * its attempts in flight have ended (up to WEBHOOK_TIMEOUT_MS): the grace before SIGKILL
 * must cover both (README, "Start commands"). */
export const STOP_WRITES_MS = 8_000;

/**
 * Stopping with results a failed write left (the database away): keeps calling `write`,
 * which only writes what waits, with a growing pause, until nothing waits or
 * STOP_WRITES_MS have passed. Worker mode and a plain Deno process in HTTP mode use it.
 */
export async function writeBeforeExit(
  engine: Pick<DispatchEngine, "unwritten">,
  write: () => Promise<unknown>,
  log: (message: string) => void,
): Promise<void> {
  const until = Date.now() + STOP_WRITES_MS;
  const giveUp = (why: unknown) =>
    log(`stopping with ${engine.unwritten} result(s) unwritten (their deliveries go again after their leases): ${why instanceof Error ? why.message : String(why)}`);
  for (let wait = 250; engine.unwritten > 0; wait = Math.min(wait * 2, 2_000)) {
    const left = until - Date.now();
    if (left <= 0) return giveUp("out of time");
    // A database that drops packets rather than refusing may hold a write for longer than
    // the time left: that write is abandoned, the process exits anyway.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outOfTime = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), left)));
    try {
      if (await Promise.race([write(), outOfTime]) === "late") return giveUp("a write did not end in time");
    } catch (error) {
      if (until - Date.now() <= 0) return giveUp(error);
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, until - Date.now())));
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface Worker {
  /** Resolves when the worker has stopped. */
  done: Promise<void>;
  /** Graceful stop: attempts in flight finish and are recorded. */
  stop(): Promise<void>;
}

export function startWorker({ engine, sql, log = console.log }: WorkerDeps): Worker {
  const stopping = new AbortController();

  let reported: DrainCounts = emptyCounts();
  const report = () => {
    const now = engine.totals;
    if (now.claimed === reported.claimed) return;
    const d = (k: keyof DrainCounts) => now[k] - reported[k];
    log(
      `delivered: ${d("succeeded")} ok, ${d("retried")} to retry, ${d("failed")} failed, ${d("blocked")} blocked, ${
        d("released")
      } handed back`,
    );
    reported = { ...now };
  };

  // Writes that read "nobody listens" skipped their NOTIFY: the loop looks for work after
  // every note, and never sleeps without first waiting for the transactions in progress.
  const noteListening = async () => {
    try {
      await sql`select private.note_dispatcher_listening()`;
      engine.poke();
    } catch {
      // The database is unreachable: the loop's own error says so, and the next note follows.
    }
  };

  async function loop() {
    let listener: postgres.ListenMeta | null = null;
    const reporting = setInterval(report, REPORT_EVERY_MS);
    const noting = setInterval(noteListening, LISTENING_NOTE_EVERY_MS);
    try {
      while (!stopping.signal.aborted) {
        try {
          // postgres.js re-listens by itself after a reconnect (and calls the third
          // argument again then); only the first LISTEN is ours.
          listener ??= await sql.listen("webhook_deliveries", () => engine.poke(), noteListening);
          await engine.run({ signal: stopping.signal });
        } catch (error) {
          // Postgres restarting or unreachable (at start too): keep the process, retry
          // shortly. Nothing is lost: the outbox is durable, and the engine writes first
          // what it could not write (what it never wrote is sent again after its lease).
          log(`dispatcher error (retrying in 1 s): ${error instanceof Error ? error.message : String(error)}`);
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
      // Stopping. With the signal aborted, a run only writes what waits (it claims nothing).
      await writeBeforeExit(engine, () => engine.run({ signal: stopping.signal }), log);
    } finally {
      clearInterval(noting);
      clearInterval(reporting);
      report();
      await listener?.unlisten().catch(() => {});
    }
  }

  const done = loop();
  return {
    done,
    async stop() {
      stopping.abort();
      await done;
    },
  };
}

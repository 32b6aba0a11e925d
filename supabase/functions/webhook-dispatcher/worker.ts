// Worker mode, for local and self-hosted use: a long-running process that LISTENs for
// new deliveries, drains as soon as something commits, sleeps until the next retry is
// due (or a lease expires), and on SIGTERM/SIGINT finishes in-flight attempts and hands
// unstarted ones back before exiting.
import type postgres from "postgres";
import type { DispatchEngine, DrainCounts } from "../_shared/dispatch/engine.ts";

export interface WorkerDeps {
  engine: Pick<DispatchEngine, "drain">;
  sql: postgres.Sql;
  /** Budget of one drain round (DispatcherConfig.workerBudgetMs): covers one attempt. */
  budgetMs: number;
  log?: (message: string) => void;
}

export interface Worker {
  /** Resolves when the worker has stopped. */
  done: Promise<void>;
  /** Graceful stop: in-flight attempts finish, unstarted ones are released. */
  stop(): Promise<void>;
  /** Totals since start. */
  counts: DrainCounts;
}

/** Longest sleep between checks when nothing is announced: a safety net for lost NOTIFYs. */
const MAX_IDLE_MS = 5_000;

export function startWorker({ engine, sql, budgetMs, log = console.log }: WorkerDeps): Worker {
  const stopping = new AbortController();
  const counts: DrainCounts = { claimed: 0, succeeded: 0, failed: 0, retried: 0, blocked: 0, released: 0 };
  let wake: () => void = () => {};
  let woken = false;
  const poke = () => {
    woken = true;
    wake();
  };
  stopping.signal.addEventListener("abort", poke);

  async function msUntilNextDue(): Promise<number> {
    const [row] = await sql<{ ms: number | null }[]>`
      select extract(epoch from (min(next_attempt_at) - now())) * 1000 as ms
        from public.webhook_deliveries
       where state = 'pending'
    `;
    return row?.ms === null || row?.ms === undefined ? MAX_IDLE_MS : Math.max(0, Math.min(Number(row.ms), MAX_IDLE_MS));
  }

  async function loop() {
    const listener = await sql.listen("webhook_deliveries", poke);
    try {
      while (!stopping.signal.aborted) {
        woken = false;
        try {
          const batch = await engine.drain({ budgetMs, signal: stopping.signal });
          for (const key of Object.keys(counts) as (keyof DrainCounts)[]) counts[key] += batch[key];
          if (batch.claimed > 0) {
            log(
              `delivered: ${batch.succeeded} ok, ${batch.retried} to retry, ${batch.failed} failed, ${batch.blocked} blocked, ${batch.released} handed back`,
            );
            continue;
          }
          const idle = await msUntilNextDue();
          if (idle > 0 && !woken && !stopping.signal.aborted) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, idle);
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          }
        } catch (error) {
          // Postgres restarting or unreachable: keep the process, retry shortly. Nothing
          // is lost: leases expire and the outbox is durable.
          log(`dispatcher error (retrying in 1 s): ${error instanceof Error ? error.message : String(error)}`);
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    } finally {
      await listener.unlisten().catch(() => {});
    }
  }

  const done = loop();
  return {
    done,
    counts,
    async stop() {
      stopping.abort();
      await done;
    },
  };
}

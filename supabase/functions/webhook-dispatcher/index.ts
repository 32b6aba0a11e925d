// webhook-dispatcher: delivers the outbox's pending webhooks, signed, with retries.
//
//   HTTP mode (default; how Supabase Edge Functions run it):
//     POST with `Authorization: Bearer <service role key>` drains due deliveries.
//   Worker mode (local and self-hosted): `deno task worker` in supabase/functions (index.ts --worker)
//     LISTENs and delivers continuously until SIGTERM/SIGINT.
//
// Configuration is environment only; see README "Dispatcher configuration".
import { ConfigError, parseConfig } from "../_shared/dispatch/config.ts";
import { DispatchEngine } from "../_shared/dispatch/engine.ts";
import { DispatcherMetrics } from "../_shared/dispatch/metrics.ts";
import { connectDatabase, createPgStore } from "../_shared/dispatch/pg_store.ts";
import { createHttpHandler } from "./http_handler.ts";
import { serveMetrics } from "./metrics_server.ts";
import { startWorker } from "./worker.ts";

const mode = Deno.args.includes("--worker") ? "worker" : "http";

function loadConfig() {
  try {
    return parseConfig(Deno.env.toObject(), { mode });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      Deno.exit(2);
    }
    throw error;
  }
}

const config = loadConfig();
// The claim loop and the result writer each hold one connection; LISTEN holds another.
const sql = connectDatabase(config.dbUrl!, 4);
const metrics = new DispatcherMetrics();
const engine = new DispatchEngine({
  store: createPgStore(sql, { workerId: config.workerId, disableAfterHours: config.disableAfterHours }),
  config,
  observer: metrics,
});

if (mode === "worker") {
  const log = (m: string) => console.log(`[${config.workerId}] ${m}`);
  const worker = startWorker({ engine, sql, log });
  const metricsServer = config.metrics && serveMetrics({ engine, metrics, sql, ...config.metrics, log });
  if (config.metrics) log(`metrics on http://${config.metrics.hostname}:${config.metrics.port}/metrics`);
  console.log(`[${config.workerId}] webhook dispatcher worker started`);
  const shutdown = async () => {
    console.log(`[${config.workerId}] stopping: finishing in-flight attempts`);
    await worker.stop();
    await metricsServer?.shutdown();
    await sql.end({ timeout: 5 });
    console.log(`[${config.workerId}] stopped`);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", shutdown);
  Deno.addSignalListener("SIGINT", shutdown);
} else {
  if (!config.serviceRoleKey) {
    console.error("SUPABASE_SERVICE_ROLE_KEY is required in HTTP mode (it is the only accepted bearer token)");
    Deno.exit(2);
  }
  // deno-lint-ignore no-explicit-any
  const edgeRuntime = (globalThis as any).EdgeRuntime as { waitUntil(p: Promise<unknown>): void } | undefined;
  const waitUntil = edgeRuntime ? (work: Promise<unknown>) => edgeRuntime.waitUntil(work) : undefined;
  const handler = createHttpHandler({
    engine,
    serviceRoleKey: config.serviceRoleKey,
    budgetMs: config.httpBudgetMs,
    waitUntil,
  });
  // Supabase picks the port itself; locally and in tests PORT chooses it.
  const port = Deno.env.get("PORT");
  if (port) Deno.serve({ port: Number(port), hostname: "127.0.0.1" }, handler);
  else Deno.serve(handler);
}

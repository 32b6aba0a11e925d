// Worker mode's /metrics: Prometheus text for the operator's scraper. What this worker did
// comes from the engine; what the outbox looks like, across every dispatcher, from
// private.webhook_health(), private.webhook_cancellations_in_progress(),
// private.webhook_results_waiting() and private.webhook_company_shares() (a few
// milliseconds per scrape; README "Operating it").
import type postgres from "postgres";
import type { DispatchEngine } from "../_shared/dispatch/engine.ts";
import type { DispatcherMetrics, OutboxHealth } from "../_shared/dispatch/metrics.ts";

export interface MetricsServerDeps {
  engine: Pick<DispatchEngine, "totals" | "inFlight">;
  metrics: DispatcherMetrics;
  sql: postgres.Sql;
  hostname: string;
  port: number;
  log?: (message: string) => void;
}

function createMetricsHandler(
  { engine, metrics, sql, log = console.error }: Omit<MetricsServerDeps, "hostname" | "port">,
) {
  return async (request: Request): Promise<Response> => {
    const { pathname } = new URL(request.url);
    if (pathname !== "/metrics") return new Response("not found: GET /metrics\n", { status: 404 });
    if (request.method !== "GET") return new Response("use GET\n", { status: 405 });
    let health: OutboxHealth | null = null;
    try {
      [health] = await sql<OutboxHealth[]>`
        select h.lag_seconds, h.due_deliveries, h.in_flight_deliveries, h.scheduled_deliveries_estimate, h.signals,
               h.endpoints_healthy, h.endpoints_failing, h.endpoints_circuit_open, h.endpoints_disabled,
               h.wakeup_failures, c.cancellations_in_progress, c.oldest_cancellation_age_seconds,
               c.deliveries_being_cancelled, r.results_waiting_for_held_endpoints, r.oldest_waiting_result_age_seconds,
               s.companies_at_share, s.endpoints_waiting_for_company_share
          from private.webhook_health() h
         cross join private.webhook_cancellations_in_progress() c
         cross join private.webhook_results_waiting() r
         cross join private.webhook_company_shares() s`;
    } catch (error) {
      // The scrape still answers: webhook_outbox_up 0 says the database did not.
      log(`metrics: outbox health unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
    const body = metrics.render({ totals: engine.totals, inFlight: engine.inFlight, health });
    return new Response(body, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
  };
}

export function serveMetrics(deps: MetricsServerDeps): Deno.HttpServer {
  return Deno.serve({ hostname: deps.hostname, port: deps.port, onListen() {} }, createMetricsHandler(deps));
}

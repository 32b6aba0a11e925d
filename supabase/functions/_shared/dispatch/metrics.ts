// What a worker tells its operator, in the Prometheus text format (version 0.0.4): the
// deliveries it attempted by outcome, how long attempts took, its requests in flight,
// and what the database says about the whole outbox (lag, backlog, endpoints by state).

import type { DrainCounts, EngineObserver } from "./engine.ts";
import type { DeliveryResult } from "./store.ts";

/** Upper bounds (seconds) of the attempt-duration histogram's buckets. */
export const DURATION_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

/**
 * The columns of private.webhook_health(), private.webhook_cancellations_in_progress(),
 * private.webhook_results_waiting() and private.webhook_company_shares() (service role) that
 * /metrics exports.
 */
export interface OutboxHealth {
  /** 0 when nothing is due. */
  lag_seconds: number;
  due_deliveries: number;
  in_flight_deliveries: number;
  scheduled_deliveries_estimate: number;
  signals: number;
  endpoints_healthy: number;
  endpoints_failing: number;
  endpoints_circuit_open: number;
  endpoints_disabled: number;
  wakeup_failures: number | null;
  /** Disabled or deleted endpoints whose pending deliveries the claims are still cancelling. */
  cancellations_in_progress: number;
  /** 0 when none. */
  oldest_cancellation_age_seconds: number;
  /** Counted up to 10,000. */
  deliveries_being_cancelled: number;
  /** Attempt results kept because another transaction held their endpoint's row. */
  results_waiting_for_held_endpoints: number;
  /** 0 when none. */
  oldest_waiting_result_age_seconds: number;
  /** Companies with an endpoint waiting for a slot of their share of requests. */
  companies_at_share: number;
  /** Those endpoints (their deliveries are due). */
  endpoints_waiting_for_company_share: number;
}

export class DispatcherMetrics implements EngineObserver {
  /** Bucket counts, not cumulative; the last one is +Inf. */
  readonly #buckets = new Array<number>(DURATION_BUCKETS_SECONDS.length + 1).fill(0);
  #durationSum = 0;
  #attempts = 0;

  attempted(result: DeliveryResult): void {
    const seconds = result.duration_ms / 1000;
    const i = DURATION_BUCKETS_SECONDS.findIndex((le) => seconds <= le);
    this.#buckets[i === -1 ? DURATION_BUCKETS_SECONDS.length : i]++;
    this.#durationSum += seconds;
    this.#attempts++;
  }

  render(state: { totals: Readonly<DrainCounts>; inFlight: number; health: OutboxHealth | null }): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    const { totals } = state;
    metric("webhook_deliveries_attempted_total", "counter", "Attempts made by this dispatcher, by outcome.", [
      ['{outcome="succeeded"}', totals.succeeded],
      ['{outcome="retried"}', totals.retried],
      ['{outcome="failed"}', totals.failed],
      ['{outcome="blocked"}', totals.blocked],
    ]);
    metric("webhook_deliveries_released_total", "counter", "Claimed deliveries handed back unattempted.", [
      ["", totals.released],
    ]);
    let cumulative = 0;
    const buckets: [string, number][] = DURATION_BUCKETS_SECONDS.map((le, i) => {
      cumulative += this.#buckets[i];
      return [`_bucket{le="${le}"}`, cumulative];
    });
    buckets.push(['_bucket{le="+Inf"}', this.#attempts], ["_sum", round(this.#durationSum)], [
      "_count",
      this.#attempts,
    ]);
    metric("webhook_attempt_duration_seconds", "histogram", "Duration of each attempt, request to response.", buckets);
    metric("webhook_requests_in_flight", "gauge", "Requests this dispatcher has in flight.", [["", state.inFlight]]);

    const h = state.health;
    metric("webhook_outbox_up", "gauge", "1 when the outbox's health could be read from the database.", [
      ["", h === null ? 0 : 1],
    ]);
    if (h !== null) {
      metric(
        "webhook_delivery_lag_seconds",
        "gauge",
        "Age of the oldest delivery that is due and not in flight (0 when none).",
        [["", round(h.lag_seconds)]],
      );
      metric(
        "webhook_deliveries_pending",
        "gauge",
        "Pending deliveries of every dispatcher, by what they wait for (due counted up to 10,000; scheduled estimated).",
        [
          ['{state="due"}', Number(h.due_deliveries)],
          ['{state="in_flight"}', Number(h.in_flight_deliveries)],
          ['{state="scheduled"}', Number(h.scheduled_deliveries_estimate)],
        ],
      );
      metric(
        "webhook_signals_pending",
        "gauge",
        "Signals of new deliveries no claim has taken yet (one per endpoint per inserting statement).",
        [
          ["", Number(h.signals)],
        ],
      );
      metric("webhook_endpoints", "gauge", "Endpoints by state.", [
        ['{state="healthy"}', Number(h.endpoints_healthy)],
        ['{state="failing"}', Number(h.endpoints_failing)],
        ['{state="circuit_open"}', Number(h.endpoints_circuit_open)],
        ['{state="disabled"}', Number(h.endpoints_disabled)],
      ]);
      metric(
        "webhook_cancellations_in_progress",
        "gauge",
        "Disabled or deleted endpoints whose pending deliveries the claims are still cancelling, a chunk per claim.",
        [["", Number(h.cancellations_in_progress)]],
      );
      metric(
        "webhook_cancellation_age_seconds",
        "gauge",
        "How long the oldest unfinished cancellation has waited (0 when none); minutes mean nothing is claiming.",
        [["", round(h.oldest_cancellation_age_seconds)]],
      );
      metric(
        "webhook_deliveries_being_cancelled",
        "gauge",
        "Pending deliveries those cancellations still cover (counted up to 10,000).",
        [["", Number(h.deliveries_being_cancelled)]],
      );
      metric(
        "webhook_results_waiting",
        "gauge",
        "Attempt results kept because another transaction held their endpoint's row; the first claim after it ends records them.",
        [["", Number(h.results_waiting_for_held_endpoints)]],
      );
      metric(
        "webhook_result_wait_age_seconds",
        "gauge",
        "How long the oldest kept result has waited (0 when none); minutes mean a session holds an endpoint.",
        [["", round(h.oldest_waiting_result_age_seconds)]],
      );
      metric(
        "webhook_companies_at_share",
        "gauge",
        "Companies with an endpoint whose due deliveries wait for a slot of the company's share of requests in flight (company_concurrency).",
        [["", Number(h.companies_at_share)]],
      );
      metric(
        "webhook_endpoints_waiting_for_company_share",
        "gauge",
        "Endpoints whose due deliveries wait for a slot of their company's share.",
        [["", Number(h.endpoints_waiting_for_company_share)]],
      );
      if (h.wakeup_failures !== null) {
        metric(
          "webhook_wakeup_failures",
          "gauge",
          "pg_net requests of the last hour not answered 2xx (other pg_net calls of the database count too).",
          [
            ["", Number(h.wakeup_failures)],
          ],
        );
      }
    }
    return lines.join("\n") + "\n";
  }
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

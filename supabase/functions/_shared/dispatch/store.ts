// The store contract: what the engine needs from the database, and the rows it
// exchanges with it. pg_store.ts implements it over the private.* outbox functions;
// engine_test.ts has an in-memory double.

import type { Outcome } from "../delivery/send.ts";

/** A row of private.claim_due_deliveries. */
export interface ClaimedDelivery {
  delivery_id: string;
  event_id: string;
  webhook_id: string;
  company_id: string;
  url: string;
  /** The full JSON body; a string is sent verbatim, anything else is JSON-encoded. */
  payload: unknown;
  /** The attempt about to be made, 1-based. */
  attempt_number: number;
  /** Current secret first, then a rotated-out one still inside its overlap. */
  secrets: string[];
  event_created_at: string | Date;
}

/** An element of the `results` array of private.record_delivery_results. */
export interface DeliveryResult {
  delivery_id: string;
  attempt_number: number;
  outcome: Outcome;
  status: number | null;
  duration_ms: number;
  response_body: string | null;
  error: string | null;
  /** ISO timestamp of the next attempt; null on a failure means retries are exhausted. */
  next_attempt_at: string | null;
  /** HTTP 410: the SQL side disables the endpoint. */
  gone: boolean;
}

/**
 * What private.claim_due_deliveries accepts; it refuses anything else (SQLSTATE 22023).
 * config.ts holds the settings to these bounds; pg_store_test.ts checks them against the
 * database, so a change on either side alone fails a test.
 */
export const CLAIM_LIMITS = {
  batchSize: { min: 1, max: 1_000 },
  leaseSeconds: { min: 1, max: 3_600 },
} as const;

/** The transactions in progress when a dispatcher cleared its heartbeat (xid8 as text). */
export interface IdleMark {
  readonly transactions: readonly string[];
}

/** A `record` that failed after writing some of its results: `unrecorded` are the rest,
 * which a later call must still write. Any other error from `record` wrote nothing. */
export class PartlyRecorded extends Error {
  constructor(message: string, readonly unrecorded: DeliveryResult[], options?: ErrorOptions) {
    super(message, options);
    this.name = "PartlyRecorded";
  }
}

export interface DeliveryStore {
  /**
   * Leases up to `batchSize` due deliveries for `leaseSeconds` (both within CLAIM_LIMITS),
   * never past an endpoint's cap or open circuit. A claim that finds work marks this
   * dispatcher awake (the heartbeat): committing transactions then skip their wake-up.
   */
  claim(batchSize: number, leaseSeconds: number): Promise<ClaimedDelivery[]>;
  /**
   * Records the attempts of one batch and ends their leases; with `then`, claims in the
   * same round trip (as `claim` would) and returns what it claimed. Fails whole, or with
   * PartlyRecorded.
   */
  record(results: DeliveryResult[], then?: { batchSize: number; leaseSeconds: number }): Promise<ClaimedDelivery[]>;
  /** Gives leases back unattempted (shutdown, or too little lease or budget left). */
  release(deliveryIds: string[]): Promise<void>;
  /** Going to sleep, step 1: clears the heartbeat; returns the transactions in progress. */
  goingIdle(): Promise<IdleMark>;
  /** Step 2: whether all of them have ended (then one more claim, then sleep). */
  transactionsEnded(mark: IdleMark): Promise<boolean>;
  /** Tells the other dispatchers there is more due than this one takes now: a NOTIFY for
   * workers, and a pg_net wake-up of the edge function where one is configured. */
  handOff(): Promise<void>;
  /** When a claim could next find work: now if new deliveries wait, null if nothing is scheduled. */
  nextDueAt(): Promise<Date | null>;
}

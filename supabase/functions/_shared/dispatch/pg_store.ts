// DeliveryStore over Postgres, calling the private.* outbox functions.
// pg_store_test.ts runs it against the real database of DB_URL (which npm test sets).

import postgres from "postgres";
import { databaseTls, verifiedTlsSocket } from "./pg_tls.ts";
import {
  type ClaimedDelivery,
  type DeliveryResult,
  type DeliveryStore,
  type IdleMark,
  PartlyRecorded,
} from "./store.ts";

export interface PgStoreOptions {
  /** Leases are taken and released in this name; see DispatcherConfig.workerId. */
  workerId: string;
  /** Passed to record_delivery_results as `disable_after`. */
  disableAfterHours: number;
}

/**
 * A small pool for the dispatcher.
 * - `prepare: false`: the URL may point at Supavisor's transaction-mode pooler
 *   (WEBHOOK_DB_URL), where named prepared statements do not survive.
 * - `fetch_types: false`: postgres.js otherwise runs a type query on every new
 *   connection whose failure is an unhandled rejection (porsager/postgres#1192): a
 *   connection lost during a Postgres restart would kill the worker. Arrays therefore
 *   travel as JSON in the queries below.
 * - `backoff`: reconnect within a second once Postgres is back (the default grows to
 *   20 s and delays the LISTEN connection too).
 * - TLS (pg_tls.ts): as the URL's sslmode says; else plain to a local host, and verified
 *   TLS (against `caCert` when given) to any other.
 */
export function connectDatabase(dbUrl: string, max = 4, { caCert }: { caCert?: string } = {}): postgres.Sql {
  const connectTimeoutSeconds = 10;
  const tls = databaseTls(dbUrl);
  return postgres(dbUrl, {
    prepare: false,
    fetch_types: false,
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 1),
    max,
    idle_timeout: 30,
    connect_timeout: connectTimeoutSeconds,
    connection: { application_name: "webhook-dispatcher" },
    ...(tls === "plain" ? { ssl: false } : {}),
    // postgres.js speaks plain Postgres over a socket that is already encrypted.
    ...(tls === "verified"
      ? {
        ssl: false,
        socket: ({ host, port }: { host: string[]; port: number[] }) =>
          verifiedTlsSocket(host[0], port[0], { caCert, timeoutMs: connectTimeoutSeconds * 1000 }),
      }
      : {}),
  });
}

/**
 * Text Postgres can store: jsonb refuses \u0000 and lone surrogates, and a response body
 * cut at 4096 UTF-16 units can end in half an emoji. A receiver could otherwise make its
 * own results, and every result batched with them, unrecordable.
 */
function storableText(text: string | null): string | null {
  return text === null ? null : text.replaceAll("\u0000", "").toWellFormed();
}

function storable(result: DeliveryResult): DeliveryResult {
  return { ...result, response_body: storableText(result.response_body), error: storableText(result.error) };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function createPgStore(sql: postgres.Sql, { workerId, disableAfterHours }: PgStoreOptions): DeliveryStore {
  // Every parameter of the private.* functions is passed explicitly: the values are
  // config.ts's, never a SQL default.
  // Sent as one jsonb array: one round trip and one transaction per batch.
  // As text, then cast: a string parameter the server types as jsonb would be
  // JSON-encoded a second time by postgres.js (a JSON string, not an array).
  const recordBatch = async (results: DeliveryResult[]) => {
    await sql`
      select private.record_delivery_results(
        ${workerId},
        ${JSON.stringify(results)}::text::jsonb,
        make_interval(secs => ${disableAfterHours * 3600}::float8)
      )
    `;
  };

  // The columns of private.claimed_delivery, arrays as JSON (fetch_types is off). The
  // payload as text: the engine sends a string verbatim, so the body is the stored JSON
  // byte for byte, never parsed into JavaScript numbers (an id above 2^53, a decimal
  // with more than 17 digits) and encoded again, and costs no parse and stringify.
  const claimed = sql`delivery_id, event_id, webhook_id, company_id, url, payload::text as payload,
                      attempt_number, to_jsonb(secrets) as secrets, event_created_at`;

  const store: DeliveryStore = {
    async claim(batchSize, leaseSeconds) {
      const rows = await sql<ClaimedDelivery[]>`
        select ${claimed} from private.claim_due_deliveries(${workerId}, ${batchSize}::int, ${leaseSeconds}::int)
      `;
      return [...rows];
    },

    async record(results, then) {
      if (results.length === 0) return then ? await store.claim(then.batchSize, then.leaseSeconds) : [];
      const clean = results.map(storable);
      try {
        if (!then) {
          await recordBatch(clean);
          return [];
        }
        const rows = await sql<ClaimedDelivery[]>`
          select ${claimed}
            from private.record_and_claim(
              ${workerId},
              ${JSON.stringify(clean)}::text::jsonb,
              make_interval(secs => ${disableAfterHours * 3600}::float8),
              ${then.batchSize}::int,
              ${then.leaseSeconds}::int
            )
        `;
        return [...rows];
      } catch (batchError) {
        // One bad row must not sink a whole batch (its leases would expire and every
        // delivery in it would be sent again): record them one by one, and a row that
        // still fails without its response body. Nothing is claimed this time. A write that
        // did commit, its answer lost with the connection, is written again here: it moves
        // nothing, and the database logs each attempt once (20261201090500).
        console.error(`recording ${clean.length} results failed (${errorText(batchError)}); recording one by one`);
        for (const [i, result] of clean.entries()) {
          try {
            await recordBatch([result]);
          } catch (rowError) {
            try {
              await recordBatch([{
                ...result,
                response_body: null,
                error: `result not recordable: ${errorText(rowError)}`.slice(0, 2000),
              }]);
            } catch (error) {
              // Not this row: the database. What is recorded stays recorded (its attempt
              // must not be logged twice); the rest goes back to the engine.
              if (i === 0) throw error;
              throw new PartlyRecorded(
                `recorded ${i} of ${clean.length} results: ${errorText(error)}`,
                clean.slice(i),
                {
                  cause: error,
                },
              );
            }
          }
        }
        return [];
      }
    },

    async release(deliveryIds: string[]) {
      if (deliveryIds.length === 0) return;
      await sql`
        select private.release_deliveries(
          ${workerId},
          array(select jsonb_array_elements_text(${JSON.stringify(deliveryIds)}::text::jsonb)::uuid)
        )
      `;
    },

    async goingIdle(): Promise<IdleMark> {
      const [row] = await sql<{ transactions: string[] }[]>`
        select to_jsonb(array(select x::text from unnest(private.dispatcher_going_idle()) x)) as transactions
      `;
      return { transactions: row.transactions };
    },

    async transactionsEnded(mark: IdleMark): Promise<boolean> {
      if (mark.transactions.length === 0) return true;
      const [row] = await sql<{ ended: boolean }[]>`
        select private.transactions_ended(
          array(select jsonb_array_elements_text(${JSON.stringify(mark.transactions)}::text::jsonb)::xid8)
        ) as ended
      `;
      return row.ended;
    },

    async handOff() {
      await sql`select private.hand_off_work()`;
    },

    async nextDueAt(): Promise<Date | null> {
      const [row] = await sql<{ at: Date | null }[]>`select private.next_dispatch_at() as at`;
      return row.at === null ? null : new Date(row.at);
    },
  };
  return store;
}

// DeliveryStore over Postgres, calling the private.* outbox functions.
// pg_store_test.ts runs it against a real database when DB_URL is set.

import postgres from "postgres";
import type { ClaimedDelivery, DeliveryResult, DeliveryStore } from "./store.ts";

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
 * - `ssl`: see databaseTls.
 */
export function connectDatabase(dbUrl: string, max = 4, { caCert }: { caCert?: string } = {}): postgres.Sql {
  const ssl = databaseTls(dbUrl, caCert);
  return postgres(dbUrl, {
    prepare: false,
    fetch_types: false,
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 1),
    max,
    idle_timeout: 30,
    connect_timeout: 10,
    connection: { application_name: "webhook-dispatcher" },
    ...(ssl === undefined ? {} : { ssl }),
  });
}

/**
 * TLS for a connection string. `sslmode` (or `ssl`, `sslrootcert`) in the URL wins:
 * postgres.js reads it, and undefined leaves it to. Otherwise a local host (localhost,
 * 127.0.0.0/8, ::1, a Unix socket) is plain, and any other is encrypted: verified against
 * `caCert` when given (verify-full: the chain and the host name), else without verifying
 * the certificate (`require`, what libpq's sslmode=require does), so a project that
 * enforces SSL connects.
 */
export function databaseTls(dbUrl: string, caCert?: string): false | "require" | { ca: string } | undefined {
  const [, hostPart = "", query = ""] =
    /^postgres(?:ql)?:\/\/(?:[^@/?#]*@)?([^/?#]*)[^?#]*(?:\?([^#]*))?/.exec(dbUrl) ??
      [];
  if (/(^|&)(sslmode|ssl|sslrootcert)=/i.test(query)) return undefined;
  const hosts = hostPart.split(",").map((h) => h.replace(/:\d*$/, "").replace(/^\[(.*)\]$/, "$1").toLowerCase());
  const local = (h: string) => h === "" || h === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::1";
  if (hosts.every(local)) return false;
  return caCert === undefined ? "require" : { ca: caCert };
}

/**
 * Text Postgres can store: jsonb refuses \u0000 and lone surrogates, and a response body
 * cut at 4096 UTF-16 units can end in half an emoji. A receiver could otherwise make its
 * own results, and every result batched with them, unrecordable.
 */
export function storableText(text: string | null): string | null {
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

  return {
    async claim(batchSize, leaseSeconds) {
      // per_webhook_limit is null (no cap in the claim): the engine's limiter caps each
      // endpoint's requests in flight.
      const rows = await sql<ClaimedDelivery[]>`
        select delivery_id, event_id, webhook_id, company_id, url, payload,
               attempt_number, to_jsonb(secrets) as secrets, event_created_at
        from private.claim_due_deliveries(${workerId}, ${batchSize}::int, ${leaseSeconds}::int, null::int)
      `;
      return [...rows];
    },

    async record(results: DeliveryResult[]) {
      if (results.length === 0) return;
      const clean = results.map(storable);
      try {
        await recordBatch(clean);
      } catch (batchError) {
        // One bad row must not sink a whole batch (its leases would expire and every
        // delivery in it would be sent again): record them one by one, and a row that
        // still fails without its response body.
        console.error(`recording ${clean.length} results failed (${errorText(batchError)}); recording one by one`);
        for (const result of clean) {
          try {
            await recordBatch([result]);
          } catch (rowError) {
            await recordBatch([{
              ...result,
              response_body: null,
              error: `result not recordable: ${errorText(rowError)}`.slice(0, 2000),
            }]);
          }
        }
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
  };
}

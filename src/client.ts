import type { PostgrestError, SupabaseClient } from "@supabase/supabase-js";
import type { Database, Enums, Tables } from "./database.types.ts";
import { afterCursorFilters, decodeDeliveryCursor, encodeDeliveryCursor } from "./cursor.ts";
import { toWebhooksError, WebhooksError } from "./errors.ts";

/**
 * How an endpoint receives its deliveries (public.webhooks.delivery_order, the check
 * webhooks_delivery_order_valid): "parallel", or "ordered" (each process's events one at a
 * time, in order; see the README).
 */
export type DeliveryOrder = "parallel" | "ordered";
export type Webhook = Omit<Tables<"webhooks">, "delivery_order"> & { delivery_order: DeliveryOrder };
export type WebhookTriggerType = Tables<"webhook_trigger_types">;
export type WebhookEvent = Tables<"webhook_events">;
/**
 * A delivery as listed: its row plus `waiting_for`, the delivery of its ordering key it
 * waits for on an ordered endpoint (public.waiting_for), null when it waits for nothing.
 */
export type WebhookDelivery = Tables<"webhook_deliveries">;
export type WebhookDeliveryAttempt = Tables<"webhook_delivery_attempts">;
/** The enum public.webhook_delivery_state, as generated from the database. */
export type DeliveryState = Enums<"webhook_delivery_state">;
/** The enum public.webhook_attempt_outcome, as generated from the database. */
export type AttemptOutcome = Enums<"webhook_attempt_outcome">;
/** An endpoint's state as public.webhook_endpoint_health computes it. */
export type EndpointState = "healthy" | "failing" | "circuit_open" | "disabled";
/**
 * An endpoint's health (public.webhook_endpoint_health): its state, the failing streak
 * (failing_since, consecutive_failures), the circuit breaker (circuit_opened_at,
 * next_probe_at) and its last attempt.
 */
export type EndpointHealth = Omit<Tables<"webhook_endpoint_health">, "state"> & { state: EndpointState };
/** A webhook with its health (null only if the endpoint has no health row, which the outbox never leaves). */
export type WebhookWithHealth = Webhook & { health: EndpointHealth | null };

export interface NewWebhook {
  companyId: string;
  triggerType: string;
  url: string;
  description?: string | null;
  isActive?: boolean;
  /** "parallel" unless given. */
  deliveryOrder?: DeliveryOrder;
  /**
   * Most requests in flight to this endpoint at once, across all dispatchers (1-1000; the
   * check webhooks_max_concurrent_requests_range). Null or absent: the deployment's cap.
   */
  maxConcurrentRequests?: number | null;
  /**
   * Most requests sent to this endpoint per second, across all dispatchers (1-10,000; the
   * check webhooks_max_requests_per_second_range). Null or absent: no limit of its own.
   */
  maxRequestsPerSecond?: number | null;
}

export interface WebhookChanges {
  triggerType?: string;
  url?: string;
  description?: string | null;
  isActive?: boolean;
  deliveryOrder?: DeliveryOrder;
  /** A number (1-1000), or null to go back to the deployment's cap. */
  maxConcurrentRequests?: number | null;
  /** A number (1-10,000), or null for no limit of its own. */
  maxRequestsPerSecond?: number | null;
}

export interface DeliveryFilter {
  webhookId?: string;
  state?: DeliveryState;
  /** Only deliveries of events of this trigger type (e.g. WEBHOOK_TEST). */
  triggerType?: string;
  /** Created at or after (inclusive). */
  since?: Date | string;
  /** Created before (exclusive). */
  until?: Date | string;
  /** Page size, 1 to 500 (default 50). */
  limit?: number;
  /** Rows to skip (default 0). Deep offsets get slow on a long history: prefer `after`. */
  offset?: number;
  /**
   * Keyset pagination: the `nextCursor` of the previous page. Every page then costs the
   * same, however deep. Not together with `offset`.
   */
  after?: string;
  /**
   * Count every matching row into `total` (default true). A count reads the whole
   * filtered history; a log that pages with `after` can skip it (`total` is then null).
   */
  count?: boolean;
  /**
   * Your company's id (optional). RLS already limits you to it; saying it again lets
   * Postgres plan with your company's real row count instead of an average one, which
   * keeps filtered pages of a large history on an index range scan.
   */
  companyId?: string;
}

export interface Page<T> {
  items: T[];
  /** Rows matching the filter, all pages together; null when `count: false`. */
  total: number | null;
  /** Offset of the next page, or null on the last one (and in keyset mode). */
  nextOffset: number | null;
  /** Pass as `after` for the next page; null on the last one. */
  nextCursor: string | null;
}

/** A delivery as the log lists it: the row plus its event's trigger type. */
export type DeliveryListItem = WebhookDelivery & { trigger_type: string };

/** Per endpoint, over a window (webhook_endpoint_stats). */
export type EndpointStats = Database["public"]["Functions"]["webhook_endpoint_stats"]["Returns"][number];
/** Per endpoint and UTC hour, by outcome (webhook_deliveries_per_hour). */
export type HourlyOutcomes = Database["public"]["Functions"]["webhook_deliveries_per_hour"]["Returns"][number];

export type DeliveryWithAttempts = WebhookDelivery & {
  event: WebhookEvent;
  attempts: WebhookDeliveryAttempt[];
};

type Result<T> = { data: T | null; error: PostgrestError | null };

function unwrap<T>(result: Result<T>, what: string): T {
  if (result.error) throw toWebhooksError(result.error, what);
  if (result.data === null) throw new WebhooksError("not_found", `${what}: not found, or not visible to you`);
  return result.data;
}

/** Deliveries per page of listDeliveries, at most. */
const MAX_PAGE = 500;

function iso(value: Date | string, what: string): string {
  if (!(value instanceof Date)) return value;
  if (Number.isNaN(value.getTime())) throw new WebhooksError("invalid_input", `${what} must be a valid date, got an Invalid Date`);
  return value.toISOString();
}

/**
 * Typed access to Serial webhooks for a supabase-js client signed in as a company ADMIN.
 * Authorization is the database's job (RLS and admin-checked RPCs); every failure comes
 * back as a WebhooksError with a kind you can branch on.
 */
export function createWebhooksClient(supabase: SupabaseClient<Database>) {
  return {
    async listWebhooks(filter: { triggerType?: string; isActive?: boolean } = {}): Promise<Webhook[]> {
      let query = supabase.from("webhooks").select("*").order("created_at", { ascending: true });
      if (filter.triggerType !== undefined) query = query.eq("trigger_type", filter.triggerType);
      if (filter.isActive !== undefined) query = query.eq("is_active", filter.isActive);
      return unwrap(await query, "list webhooks") as Webhook[];
    },

    /**
     * listWebhooks with each endpoint's health, in one request: PostgREST embeds
     * public.webhook_endpoint_health (one-to-one with webhooks) in the same query.
     */
    async listWebhooksWithHealth(filter: { triggerType?: string; isActive?: boolean } = {}): Promise<WebhookWithHealth[]> {
      let query = supabase.from("webhooks").select("*, webhook_endpoint_health(*)").order("created_at", { ascending: true });
      if (filter.triggerType !== undefined) query = query.eq("trigger_type", filter.triggerType);
      if (filter.isActive !== undefined) query = query.eq("is_active", filter.isActive);
      const rows = unwrap(await query, "list webhooks with health");
      return rows.map(({ webhook_endpoint_health, ...webhook }) => ({
        ...(webhook as Webhook),
        health: (webhook_endpoint_health as EndpointHealth | null) ?? null,
      }));
    },

    async getWebhook(id: string): Promise<Webhook> {
      return unwrap(await supabase.from("webhooks").select("*").eq("id", id).single(), `get webhook ${id}`) as Webhook;
    },

    async createWebhook(input: NewWebhook): Promise<Webhook> {
      const row = {
        company_id: input.companyId,
        trigger_type: input.triggerType,
        url: input.url,
        description: input.description ?? null,
        is_active: input.isActive ?? true,
        delivery_order: input.deliveryOrder ?? "parallel",
        max_concurrent_requests: input.maxConcurrentRequests ?? null,
        max_requests_per_second: input.maxRequestsPerSecond ?? null,
      };
      return unwrap(await supabase.from("webhooks").insert(row).select("*").single(), "create webhook") as Webhook;
    },

    async updateWebhook(id: string, changes: WebhookChanges): Promise<Webhook> {
      const patch: Database["public"]["Tables"]["webhooks"]["Update"] = {};
      if (changes.triggerType !== undefined) patch.trigger_type = changes.triggerType;
      if (changes.url !== undefined) patch.url = changes.url;
      if (changes.description !== undefined) patch.description = changes.description;
      if (changes.isActive !== undefined) patch.is_active = changes.isActive;
      if (changes.deliveryOrder !== undefined) patch.delivery_order = changes.deliveryOrder;
      if (changes.maxConcurrentRequests !== undefined) patch.max_concurrent_requests = changes.maxConcurrentRequests;
      if (changes.maxRequestsPerSecond !== undefined) patch.max_requests_per_second = changes.maxRequestsPerSecond;
      if (Object.keys(patch).length === 0) {
        throw new WebhooksError("invalid_input", "update webhook: nothing to change");
      }
      return unwrap(
        await supabase.from("webhooks").update(patch).eq("id", id).select("*").single(),
        `update webhook ${id}`,
      ) as Webhook;
    },

    enableWebhook(id: string): Promise<Webhook> {
      return this.updateWebhook(id, { isActive: true });
    },

    disableWebhook(id: string): Promise<Webhook> {
      return this.updateWebhook(id, { isActive: false });
    },

    async deleteWebhook(id: string): Promise<void> {
      const deleted = unwrap(
        await supabase.from("webhooks").delete().eq("id", id).select("id"),
        `delete webhook ${id}`,
      );
      if (deleted.length === 0) throw new WebhooksError("not_found", `delete webhook ${id}: not found, or not visible to you`);
    },

    /** The health of one endpoint: healthy, failing (since when), circuit_open (next probe) or disabled. */
    async getEndpointHealth(webhookId: string): Promise<EndpointHealth> {
      return unwrap(
        await supabase.from("webhook_endpoint_health").select("*").eq("webhook_id", webhookId).single(),
        `get health of webhook ${webhookId}`,
      ) as EndpointHealth;
    },

    /** The health of every endpoint you may see, optionally only those in one state. */
    async listEndpointHealth(filter: { state?: EndpointState } = {}): Promise<EndpointHealth[]> {
      let query = supabase.from("webhook_endpoint_health").select("*").order("webhook_id");
      if (filter.state !== undefined) query = query.eq("state", filter.state);
      return unwrap(await query, "list endpoint health") as EndpointHealth[];
    },

    async listTriggerTypes(): Promise<WebhookTriggerType[]> {
      return unwrap(await supabase.from("webhook_trigger_types").select("*").order("name"), "list trigger types");
    },

    async listDeliveries(filter: DeliveryFilter = {}): Promise<Page<DeliveryListItem>> {
      const limit = filter.limit ?? 50;
      const offset = filter.offset ?? 0;
      // A page is read with one row more (is there a next page?), and PostgREST answers at
      // most max_rows = 1000 rows: a page of 1000 would never see its next one.
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
        throw new WebhooksError("invalid_input", `list deliveries: limit must be an integer from 1 to ${MAX_PAGE}, got ${limit}`);
      }
      if (!Number.isInteger(offset) || offset < 0) {
        throw new WebhooksError("invalid_input", `list deliveries: offset must be a non-negative integer, got ${offset}`);
      }
      if (filter.after !== undefined && offset > 0) {
        throw new WebhooksError("invalid_input", "list deliveries: page with `after` or with `offset`, not both");
      }
      const cursor = filter.after !== undefined ? decodeDeliveryCursor(filter.after) : null;
      const withTotal = filter.count ?? true;
      // Newest first; id breaks ties (rows of one statement share created_at) and is the
      // order of the keyset indexes (20261129130000).
      let query = supabase
        .from("webhook_deliveries")
        .select("*, waiting_for, event:webhook_events!inner(trigger_type)", withTotal ? { count: "exact" } : {})
        .order("created_at", { ascending: false })
        .order("id", { ascending: false });
      if (filter.companyId) query = query.eq("company_id", filter.companyId);
      if (filter.webhookId) query = query.eq("webhook_id", filter.webhookId);
      if (filter.state) query = query.eq("state", filter.state);
      if (filter.triggerType) query = query.eq("event.trigger_type", filter.triggerType);
      if (filter.since) query = query.gte("created_at", iso(filter.since, "list deliveries: since"));
      if (filter.until) query = query.lt("created_at", iso(filter.until, "list deliveries: until"));
      if (cursor) {
        const after = afterCursorFilters(cursor);
        query = query.lte(...after.lte).or(after.or);
      }
      // One row more than the page says whether there is a next one, without a count.
      const result = await query.range(offset, offset + limit);
      const rows = unwrap(result, "list deliveries") as unknown as Array<WebhookDelivery & { event: { trigger_type: string } }>;
      const more = rows.length > limit;
      const items = rows.slice(0, limit).map(({ event, ...row }) => ({ ...row, trigger_type: event.trigger_type }));
      const last = items[items.length - 1];
      return {
        items,
        total: withTotal ? (result.count ?? items.length) : null,
        nextOffset: more && !cursor ? offset + items.length : null,
        nextCursor: more && last ? encodeDeliveryCursor(last) : null,
      };
    },

    async getDelivery(id: string): Promise<DeliveryWithAttempts> {
      const row = unwrap(
        await supabase
          .from("webhook_deliveries")
          .select("*, waiting_for, event:webhook_events!inner(*), attempts:webhook_delivery_attempts(*)")
          .eq("id", id)
          .single(),
        `get delivery ${id}`,
      ) as unknown as DeliveryWithAttempts;
      row.attempts.sort((a, b) => a.attempt_number - b.attempt_number || a.id - b.id);
      return row;
    },

    async redeliver(deliveryId: string): Promise<string> {
      return unwrap(
        await supabase.rpc("redeliver_webhook_delivery", { delivery_id: deliveryId }),
        `redeliver ${deliveryId}`,
      );
    },

    /**
     * Ends a pending delivery as cancelled (an attempt already in flight still finishes and
     * is logged); on an ordered endpoint the next delivery of its key goes next. A delivery
     * that has already ended is refused (kind "already_ended").
     */
    async cancelDelivery(deliveryId: string): Promise<string> {
      return unwrap(
        await supabase.rpc("cancel_webhook_delivery", { delivery_id: deliveryId }),
        `cancel delivery ${deliveryId}`,
      );
    },

    async replay(webhookId: string, since: Date | string): Promise<number> {
      return unwrap(
        await supabase.rpc("replay_webhook_deliveries", { webhook_id: webhookId, since: iso(since, "replay: since") }),
        `replay webhook ${webhookId}`,
      );
    },

    async sendTest(webhookId: string): Promise<string> {
      return unwrap(await supabase.rpc("send_test_webhook", { webhook_id: webhookId }), `send test to ${webhookId}`);
    },

    async revealSecret(webhookId: string): Promise<string> {
      return unwrap(await supabase.rpc("get_webhook_secret", { webhook_id: webhookId }), `reveal secret of ${webhookId}`);
    },

    async rotateSecret(webhookId: string): Promise<string> {
      return unwrap(await supabase.rpc("rotate_webhook_secret", { webhook_id: webhookId }), `rotate secret of ${webhookId}`);
    },

    // --- What the portal reads besides the tables (migrations 20261129130100..130300) ---

    /**
     * The company whose webhooks you manage, or null when you are signed in but not an
     * active ADMIN of an active company. Throws `unauthenticated` without a valid token.
     */
    async adminCompanyId(): Promise<string | null> {
      const result = await supabase.rpc("webhooks_admin_company_id");
      if (result.error) {
        // anon has no EXECUTE on it: without a user token this is "not signed in".
        if (result.error.code === "42501") {
          throw new WebhooksError("unauthenticated", "check access: not signed in", result.error);
        }
        throw toWebhooksError(result.error, "check access");
      }
      return result.data ?? null;
    },

    /** Per endpoint you can see: deliveries since then (default 24 h) by outcome, success rate, last status. */
    async endpointStats(since?: Date | string): Promise<EndpointStats[]> {
      return unwrap(
        await supabase.rpc("webhook_endpoint_stats", since === undefined ? {} : { since: iso(since, "endpoint stats: since") }),
        "endpoint stats",
      );
    },

    /** Deliveries per endpoint and UTC hour by outcome, since then (default 24 h), optionally for one endpoint. */
    async deliveriesPerHour(options: { since?: Date | string; webhookId?: string } = {}): Promise<HourlyOutcomes[]> {
      const args: { since?: string; for_webhook_id?: string } = {};
      if (options.since !== undefined) args.since = iso(options.since, "deliveries per hour: since");
      if (options.webhookId !== undefined) args.for_webhook_id = options.webhookId;
      return unwrap(await supabase.rpc("webhook_deliveries_per_hour", args), "deliveries per hour");
    },

    /** How many events `replay(webhookId, since)` would send again now (a dry run). */
    async countReplayable(webhookId: string, since: Date | string): Promise<number> {
      return unwrap(
        await supabase.rpc("count_replayable_webhook_deliveries", { webhook_id: webhookId, since: iso(since, "count replayable: since") }),
        `count replayable of ${webhookId}`,
      );
    },
  };
}

export type WebhooksClient = ReturnType<typeof createWebhooksClient>;

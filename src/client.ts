import type { PostgrestError, SupabaseClient } from "@supabase/supabase-js";
import type { Database, Enums, Tables } from "./database.types.ts";
import { toWebhooksError, WebhooksError } from "./errors.ts";

export type Webhook = Tables<"webhooks">;
export type WebhookTriggerType = Tables<"webhook_trigger_types">;
export type WebhookEvent = Tables<"webhook_events">;
export type WebhookDelivery = Tables<"webhook_deliveries">;
export type WebhookDeliveryAttempt = Tables<"webhook_delivery_attempts">;
/** The enum public.webhook_delivery_state, as generated from the database. */
export type DeliveryState = Enums<"webhook_delivery_state">;
/** The enum public.webhook_attempt_outcome, as generated from the database. */
export type AttemptOutcome = Enums<"webhook_attempt_outcome">;

export interface NewWebhook {
  companyId: string;
  triggerType: string;
  url: string;
  description?: string | null;
  isActive?: boolean;
}

export interface WebhookChanges {
  triggerType?: string;
  url?: string;
  description?: string | null;
  isActive?: boolean;
}

export interface DeliveryFilter {
  webhookId?: string;
  state?: DeliveryState;
  /** Created at or after (inclusive). */
  since?: Date | string;
  /** Created before (exclusive). */
  until?: Date | string;
  /** Page size, 1 to 1000 (default 50). */
  limit?: number;
  /** Rows to skip (default 0). */
  offset?: number;
}

export interface Page<T> {
  items: T[];
  /** Rows matching the filter, all pages together. */
  total: number;
  /** Offset of the next page, or null on the last one. */
  nextOffset: number | null;
}

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

function iso(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : value;
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
      return unwrap(await query, "list webhooks");
    },

    async getWebhook(id: string): Promise<Webhook> {
      return unwrap(await supabase.from("webhooks").select("*").eq("id", id).single(), `get webhook ${id}`);
    },

    async createWebhook(input: NewWebhook): Promise<Webhook> {
      const row = {
        company_id: input.companyId,
        trigger_type: input.triggerType,
        url: input.url,
        description: input.description ?? null,
        is_active: input.isActive ?? true,
      };
      return unwrap(await supabase.from("webhooks").insert(row).select("*").single(), "create webhook");
    },

    async updateWebhook(id: string, changes: WebhookChanges): Promise<Webhook> {
      const patch: Database["public"]["Tables"]["webhooks"]["Update"] = {};
      if (changes.triggerType !== undefined) patch.trigger_type = changes.triggerType;
      if (changes.url !== undefined) patch.url = changes.url;
      if (changes.description !== undefined) patch.description = changes.description;
      if (changes.isActive !== undefined) patch.is_active = changes.isActive;
      if (Object.keys(patch).length === 0) {
        throw new WebhooksError("invalid_input", "update webhook: nothing to change");
      }
      return unwrap(
        await supabase.from("webhooks").update(patch).eq("id", id).select("*").single(),
        `update webhook ${id}`,
      );
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

    async listTriggerTypes(): Promise<WebhookTriggerType[]> {
      return unwrap(await supabase.from("webhook_trigger_types").select("*").order("name"), "list trigger types");
    },

    async listDeliveries(filter: DeliveryFilter = {}): Promise<Page<WebhookDelivery>> {
      const limit = filter.limit ?? 50;
      const offset = filter.offset ?? 0;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new WebhooksError("invalid_input", `list deliveries: limit must be an integer from 1 to 1000, got ${limit}`);
      }
      if (!Number.isInteger(offset) || offset < 0) {
        throw new WebhooksError("invalid_input", `list deliveries: offset must be a non-negative integer, got ${offset}`);
      }
      let query = supabase
        .from("webhook_deliveries")
        .select("*", { count: "exact" })
        .order("created_at", { ascending: false })
        .order("id", { ascending: true });
      if (filter.webhookId) query = query.eq("webhook_id", filter.webhookId);
      if (filter.state) query = query.eq("state", filter.state);
      if (filter.since) query = query.gte("created_at", iso(filter.since));
      if (filter.until) query = query.lt("created_at", iso(filter.until));
      const result = await query.range(offset, offset + limit - 1);
      const items = unwrap(result, "list deliveries");
      const total = result.count ?? items.length;
      return { items, total, nextOffset: offset + items.length < total ? offset + items.length : null };
    },

    async getDelivery(id: string): Promise<DeliveryWithAttempts> {
      const row = unwrap(
        await supabase
          .from("webhook_deliveries")
          .select("*, event:webhook_events!inner(*), attempts:webhook_delivery_attempts(*)")
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

    async replay(webhookId: string, since: Date | string): Promise<number> {
      return unwrap(
        await supabase.rpc("replay_webhook_deliveries", { webhook_id: webhookId, since: iso(since) }),
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
  };
}

export type WebhooksClient = ReturnType<typeof createWebhooksClient>;

// The dispatcher never waits for an ADMIN: claims and records never lock the webhooks rows
// ADMINs edit. While an ADMIN holds an endpoint's row (an edit not yet committed), a claim
// and a record for that endpoint complete; the one write the dispatcher makes to a
// webhooks row, disabling an endpoint that answered 410 Gone, skips the held row rather
// than wait (the next such answer disables it). The dispatcher's session has a
// lock_timeout, so a wait would fail the test rather than slow it.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, impatientSession } from "../support/outbox.ts";

let setup: pg.Client;
let admin: pg.Client;
let dispatcher: pg.Client;
let companyId: string;

beforeAll(async () => {
  setup = await superuser();
  admin = await superuser();
  dispatcher = await impatientSession(300);
  companyId = await createCompany(setup, "Admin Holds Inc");
});
afterAll(async () => {
  await admin?.query("rollback").catch(() => {});
  await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup?.end(), admin?.end(), dispatcher?.end()]);
});

const gone = (c: { delivery_id: string; attempt_number: number }) => ({
  delivery_id: c.delivery_id, attempt_number: c.attempt_number, outcome: "failed", status: 410, duration_ms: 1, error: "HTTP 410", gone: true, next_attempt_at: null,
});

describe("an ADMIN editing an endpoint (not committed)", () => {
  it("claims and a 410 Gone record for it complete without waiting; the disable skips the held row", async () => {
    const hook = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://held.example/hook");
    await setup.query("select count(private.enqueue_webhook_event($1, 'PROCESS_CREATED', jsonb_build_object('n', n))) from generate_series(1, 2) n", [companyId]);

    await admin.query("begin");
    await admin.query("update public.webhooks set description = 'being edited' where id = $1", [hook]);
    try {
      const claimed = (await claim(dispatcher, "busy-dispatcher")).filter((c) => c.webhook_id === hook);
      expect(claimed).toHaveLength(2);
      const moved = await dispatcher.query("select private.record_delivery_results('busy-dispatcher', $1, interval '5 days') as n", [JSON.stringify([gone(claimed[0]!)])]);
      expect(moved.rows[0].n).toBe(1);
      await admin.query("commit");

      const after = await setup.query("select is_active, description from public.webhooks where id = $1", [hook]);
      expect(after.rows).toEqual([{ is_active: true, description: "being edited" }]); // the ADMIN's edit won; no disable yet

      const next = await dispatcher.query("select private.record_delivery_results('busy-dispatcher', $1, interval '5 days') as n", [JSON.stringify([gone(claimed[1]!)])]);
      expect(next.rows[0].n).toBe(1);
      const disabled = await setup.query("select is_active, disabled_reason from public.webhooks where id = $1", [hook]);
      expect(disabled.rows).toEqual([{ is_active: false, disabled_reason: "the endpoint answered 410 Gone" }]);
    } finally {
      await admin.query("rollback").catch(() => {});
    }
  });
});

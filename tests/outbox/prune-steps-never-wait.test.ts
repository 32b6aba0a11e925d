// Retention waits for nobody, in two sessions:
// - a retention step (private.prune_webhook_history_step, pg_cron every minute; migration
//   20261130230200_prune_history_in_bounded_steps.sql) that finds another one still running
//   leaves at once: it neither waits for it nor prunes the same pages. The first session
//   holds the cursor as a running step does.
// - a step that meets the rows of a company being deleted (migration
//   20261201090000_retention_steps_wait_for_nobody.sql) prunes everything else and leaves
//   those for the next sweep: it never waits for the delete, so the two cannot deadlock.
//   And the manual catch-up (private.prune_webhook_history) holds the steps' cursor, so no
//   step runs beside it.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { createCompany, createWebhook } from "../support/outbox.ts";

let running: pg.Client;
let next: pg.Client;
const companies: string[] = [];

beforeAll(async () => {
  running = await superuser();
  next = await superuser();
});
afterAll(async () => {
  await running?.query("rollback").catch(() => {});
  for (const id of companies) await next?.query("delete from public.companies where id = $1", [id]);
  await running?.end();
  await next?.end();
});

/**
 * A company with an endpoint and `deliveries` events delivered 31 days ago (each with its
 * delivery and one attempt), plus one event of that age left without deliveries.
 */
async function companyWithOldHistory(name: string, deliveries: number): Promise<string> {
  const id = await createCompany(next, name);
  companies.push(id);
  const hook = await createWebhook(next, id, "PROCESS_CREATED", `https://${name.toLowerCase().replace(/\W+/g, "-")}.example/hook`);
  await next.query(
    `with events as (
       insert into public.webhook_events (company_id, trigger_type, payload, created_at)
       select $1, 'PROCESS_CREATED', jsonb_build_object('n', g), now() - interval '31 days'
         from generate_series(0, $3::int) g
       returning id, payload
     ), deliveries as (
       insert into public.webhook_deliveries (company_id, event_id, webhook_id, state, attempt_count, next_attempt_at, completed_at, created_at)
       select $1, e.id, $2, 'succeeded', 1, null, now() - interval '31 days', now() - interval '31 days'
         from events e
        where (e.payload ->> 'n')::int > 0
       returning id
     )
     insert into public.webhook_delivery_attempts (delivery_id, company_id, attempt_number, outcome, status, duration_ms, created_at)
     select d.id, $1, 1, 'succeeded', 200, 5, now() - interval '31 days' from deliveries d`,
    [id, hook, deliveries],
  );
  return id;
}

async function history(companyId: string): Promise<{ events: number; deliveries: number; attempts: number }> {
  const { rows } = await next.query(
    `select (select count(*)::int from public.webhook_events where company_id = $1) as events,
            (select count(*)::int from public.webhook_deliveries where company_id = $1) as deliveries,
            (select count(*)::int from public.webhook_delivery_attempts where company_id = $1) as attempts`,
    [companyId],
  );
  return rows[0];
}

describe("a retention step", () => {
  it("returns 0 at once while another step holds the cursor, and moves nothing", async () => {
    // Not within an hour of a sweep's start (a step then does nothing either way).
    await next.query("update private.webhook_prune_cursor set sweep_started_at = null");
    const before = (await next.query("select next_page, last_step_at from private.webhook_prune_cursor")).rows[0];
    await running.query("begin");
    await running.query("select * from private.webhook_prune_cursor for update");

    await next.query("set statement_timeout = '2s'");
    // A step that waited for the cursor would end here in the 2 s timeout.
    const { rows } = await next.query("select private.prune_webhook_history_step() as pruned");
    expect(rows[0].pruned).toBe(0);
    await running.query("rollback");

    const after = (await next.query("select next_page, last_step_at from private.webhook_prune_cursor")).rows[0];
    expect(after).toEqual(before);

    // Once the other one has ended, a step runs and moves the cursor on.
    await next.query("select private.prune_webhook_history_step()");
    const moved = (await next.query("select last_step_at from private.webhook_prune_cursor")).rows[0];
    expect(moved.last_step_at).not.toEqual(before.last_step_at);
  });

  it("prunes around a company being deleted, without waiting for it, and takes its rows in the next sweep", async () => {
    const leaving = await companyWithOldHistory("Leaving Retention Inc", 3);
    const staying = await companyWithOldHistory("Staying Retention Inc", 3);
    expect(await history(leaving)).toEqual({ events: 4, deliveries: 3, attempts: 3 });

    // The delete holds the company, its events (the one without deliveries too), their
    // deliveries and attempts until it ends.
    await running.query("begin");
    await running.query("delete from public.companies where id = $1", [leaving]);

    await next.query("set statement_timeout = '2s'");
    // Every page at once, as a sweep reads them: a step that waited for the delete's rows
    // (its deliveries, or its event without deliveries) would end here in the timeout.
    await next.query("select private.prune_webhook_pages(interval '30 days', 0, 4294967295)");
    expect(await history(staying)).toEqual({ events: 0, deliveries: 0, attempts: 0 });

    // The delete is called off: its rows were left alone, and the next sweep takes them.
    await running.query("rollback");
    expect(await history(leaving)).toEqual({ events: 4, deliveries: 3, attempts: 3 });
    await next.query("select private.prune_webhook_pages(interval '30 days', 0, 4294967295)");
    expect(await history(leaving)).toEqual({ events: 0, deliveries: 0, attempts: 0 });
    await next.query("reset statement_timeout");
  });

  it("leaves a delivery whose event another transaction holds, as a company delete holds it before the event's deliveries", async () => {
    const company = await companyWithOldHistory("Held Event Retention Inc", 2);
    const { rows: [held] } = await next.query(
      "select e.id from public.webhook_events e join public.webhook_deliveries d on d.event_id = e.id where e.company_id = $1 limit 1",
      [company],
    );
    await running.query("begin");
    await running.query("select 1 from public.webhook_events where id = $1 for update", [held.id]);

    await next.query("set statement_timeout = '2s'");
    await next.query("select private.prune_webhook_pages(interval '30 days', 0, 4294967295)");
    // The other delivery and the event without deliveries went; the held event's delivery
    // stayed, so its event is not left without one while the holder goes on.
    expect(await history(company)).toEqual({ events: 1, deliveries: 1, attempts: 1 });
    const { rows: left } = await next.query("select event_id from public.webhook_deliveries where company_id = $1", [company]);
    expect(left).toEqual([{ event_id: held.id }]);

    await running.query("rollback");
    await next.query("select private.prune_webhook_pages(interval '30 days', 0, 4294967295)");
    expect(await history(company)).toEqual({ events: 0, deliveries: 0, attempts: 0 });
    await next.query("reset statement_timeout");
  });

  it("does not run beside the manual catch-up, which holds the cursor while it prunes", async () => {
    await next.query("update private.webhook_prune_cursor set sweep_started_at = null");
    const before = (await next.query("select next_page, last_step_at from private.webhook_prune_cursor")).rows[0];
    await running.query("begin");
    await running.query("select private.prune_webhook_history(interval '30 days')");

    await next.query("set statement_timeout = '2s'");
    const { rows } = await next.query("select private.prune_webhook_history_step() as pruned");
    expect(rows[0].pruned).toBe(0);
    await running.query("rollback");
    expect((await next.query("select next_page, last_step_at from private.webhook_prune_cursor")).rows[0]).toEqual(before);
    await next.query("reset statement_timeout");
  });
});


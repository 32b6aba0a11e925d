// A retention step (private.prune_webhook_history_step, pg_cron every minute; migration
// 20261130230200_prune_history_in_bounded_steps.sql) that finds another one still running
// leaves at once: it neither waits for it nor prunes the same pages. Two sessions; the
// first holds the cursor as a running step does.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";

let running: pg.Client;
let next: pg.Client;

beforeAll(async () => {
  running = await superuser();
  next = await superuser();
});
afterAll(async () => {
  await running?.query("rollback").catch(() => {});
  await running?.end();
  await next?.end();
});

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
});

// No wake-up is missed, and a busy outbox sends none it does not need. A transaction that
// creates deliveries NOTIFYs the dispatchers (channel webhook_deliveries) only when no
// dispatcher is awake, i.e. when the heartbeat a claim leaves is older than 2 s or was
// cleared by a dispatcher going idle. Going idle is safe: private.dispatcher_going_idle
// clears the heartbeat and returns the transactions in progress; a business transaction
// among them (it read "awake", so it will not NOTIFY) is waited for with
// private.transactions_ended, and the dispatcher's last claim then sees its deliveries.
// And only while a worker-mode dispatcher listens: one said so (note_dispatcher_listening)
// within the last 15 s; otherwise the pg_net wake-up alone wakes the edge function. The same
// holds for a dispatcher's hand-off of work it has no slot for (private.hand_off_work).
// Real connections: a LISTENing one (it says so, as a worker does), a business one, a
// dispatcher one.
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, noDispatcherAwake, sleep } from "../support/outbox.ts";

let listener: pg.Client;
let business: pg.Client;
let dispatcher: pg.Client;
let companyId: string;
let hook: string;
let notifications = 0;

beforeAll(async () => {
  listener = await superuser();
  business = await superuser();
  dispatcher = await superuser();
  companyId = await createCompany(dispatcher, "Wake Inc");
  hook = await createWebhook(dispatcher, companyId, "PROCESS_CREATED", "https://wake.example/hook");
  listener.on("notification", (n) => {
    if (n.channel === "webhook_deliveries") notifications++;
  });
  await listener.query("listen webhook_deliveries");
});
// As a worker does every 5 s once its LISTEN is in place.
beforeEach(async () => {
  await listener.query("select private.note_dispatcher_listening()");
});
afterAll(async () => {
  await business?.query("rollback").catch(() => {});
  await noDispatcherAwake(dispatcher);
  await dispatcher?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([listener?.end(), business?.end(), dispatcher?.end()]);
});

/** The notifications that arrive within `ms` after running `action`. */
async function notificationsDuring(action: () => Promise<unknown>, ms = 500): Promise<number> {
  const before = notifications;
  await action();
  await sleep(ms);
  return notifications - before;
}

const write = (name: string) => business.query("insert into public.processes (company_id, name) values ($1, $2)", [companyId, name]);
const drain = async () => (await claim(dispatcher, "wake-test")).filter((c) => c.webhook_id === hook);
/** A dispatcher is awake: its claim just found work (a claim that finds nothing says nothing). */
const awake = async () => {
  await write("Work for the claim");
  expect((await drain()).length).toBe(1);
};

describe("waking the dispatchers", () => {
  it("a business commit while no dispatcher is awake NOTIFYs", async () => {
    await noDispatcherAwake(dispatcher);
    expect(await notificationsDuring(() => write("Nobody awake"))).toBe(1);
    await drain();
  });

  it("a business commit while a dispatcher is awake (a claim just ran) does not", async () => {
    await awake();
    expect(await notificationsDuring(() => write("Someone awake"))).toBe(0);
    expect((await drain()).length).toBe(1); // the awake dispatcher's next claim finds it
  });

  it("a heartbeat older than 2 s counts as asleep (a dispatcher that died awake)", async () => {
    await drain();
    await dispatcher.query("select setval('private.webhook_dispatcher_heartbeat', (extract(epoch from clock_timestamp()) * 1000)::bigint - 2100)");
    expect(await notificationsDuring(() => write("Heartbeat stale"))).toBe(1);
    await drain();
  });

  it("going idle: the business transaction in progress is waited for, then its deliveries are seen", async () => {
    await awake();
    await business.query("begin");
    await write("Racing the dispatcher going idle"); // reads "awake": this transaction will not NOTIFY
    const xid = (await business.query<{ xid: string }>("select pg_current_xact_id()::text as xid")).rows[0]!.xid;

    const pending = (await dispatcher.query<{ xids: string[] }>("select private.dispatcher_going_idle()::text[] as xids")).rows[0]!.xids;
    expect(pending).toContain(xid);
    const ended = async () => (await dispatcher.query<{ ended: boolean }>("select private.transactions_ended($1::xid8[]) as ended", [pending])).rows[0]!.ended;
    expect(await ended()).toBe(false);
    expect(await drain()).toEqual([]); // not committed yet: nothing to see

    expect(await notificationsDuring(() => business.query("commit"))).toBe(0); // it read "awake" before the heartbeat was cleared
    expect(await ended()).toBe(true);
    expect((await drain()).length).toBe(1); // the dispatcher's last look finds what it did not get woken for
  });

  it("no NOTIFY while no worker listens: nobody said so, or the last note is older than 15 s", async () => {
    await noDispatcherAwake(dispatcher);
    const stamp = (ageMs: number) =>
      listener.query("select setval('private.webhook_listener_heartbeat', greatest((extract(epoch from clock_timestamp()) * 1000)::bigint - $1, 0))", [ageMs]);
    await stamp(Date.now()); // 0: nobody ever said so (hosted: the edge function alone)
    expect(await notificationsDuring(() => write("Nobody listens"))).toBe(0);
    await stamp(15_100);
    expect(await notificationsDuring(() => write("The last listener is gone"))).toBe(0);
    await stamp(14_000);
    expect(await notificationsDuring(() => write("A listener said so 14 s ago"))).toBe(1);
    expect((await drain()).length).toBe(3); // nothing is lost: every write's deliveries are due
    await noDispatcherAwake(dispatcher);
  });

  it("a hand-off (a dispatcher with every slot busy) NOTIFYs only while a worker listens", async () => {
    const handOff = () => dispatcher.query("select private.hand_off_work()");
    expect(await notificationsDuring(handOff)).toBe(1); // beforeEach: a worker said so just now
    await listener.query("select setval('private.webhook_listener_heartbeat', 0)"); // nobody ever did
    expect(await notificationsDuring(handOff)).toBe(0);
  });

  it("after going idle, the next business commit NOTIFYs again", async () => {
    await drain();
    await dispatcher.query("select private.dispatcher_going_idle()");
    expect(await notificationsDuring(() => write("After idle"))).toBe(1);
    await noDispatcherAwake(dispatcher);
  });
});

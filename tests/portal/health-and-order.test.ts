// What tenant isolation and ordered delivery show an ADMIN in the portal, end to end: the
// standalone page in headless Chromium, PostgREST, the real dispatcher and a receiver that
// verifies every signature.
// - An endpoint whose receiver answers 503 gets its circuit opened by the dispatcher; the
//   endpoint page and the list say "Circuit open since <time> — next probe at <time>", the
//   times being the database's. When the receiver comes back, a probe succeeds and the page
//   says "Healthy" by itself.
// - An endpoint created through the form as "Ordered" is ordered in the database.
// - A delivery held behind the head of its key says "waiting for delivery <head>", linking to
//   it; cancelling the head (after a confirmation) lets the held one go to the receiver.
// - Cancelling a delivery that has ended meanwhile shows the database's refusal in plain words.
// - An ADMIN sets an endpoint's own limits (requests at once, requests per second) through the
//   edit form; a value that is not a whole number in range is refused beside its field and
//   changes nothing. While its own rate holds deliveries back, the page says so.
// The circuit knobs (private.webhook_settings) are lowered for this file and restored after
// it; retries are 60 s apart, so nothing here is sent again by the retry schedule.
import type { Browser, Page } from "playwright-core";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWebhooksClient, type WebhooksClient } from "../../src/index.ts";
import { launchBrowser, openPage, screenshot, type Recorded } from "../support/browser.ts";
import { startDispatcher } from "../support/dispatcher.ts";
import { startReceiver, waitFor } from "../support/receiver.ts";
import { createWorld, env, signToken, superuser, userClaims } from "../support/world.ts";

// The probe waits long enough for the page to be read while it is still ahead.
const CIRCUIT = { circuit_failure_threshold: 2, circuit_probe_min_seconds: 12, circuit_probe_max_seconds: 12 };

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let admin: WebhooksClient;
let browser: Browser;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dispatcher: Awaited<ReturnType<typeof startDispatcher>>;
let tab: Recorded;
let page: Page;
let token: string;
let settingsBefore: Record<string, number>;

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  admin = createWebhooksClient(world.adminA.client);
  settingsBefore = (await db.query(`select ${Object.keys(CIRCUIT).join(", ")} from private.webhook_settings`)).rows[0];
  await db.query(
    "update private.webhook_settings set circuit_failure_threshold = $1, circuit_probe_min_seconds = $2, circuit_probe_max_seconds = $3",
    Object.values(CIRCUIT),
  );
  receiver = await startReceiver();
  dispatcher = await startDispatcher({
    dbUrl: env.dbUrl,
    allowedTargets: [`127.0.0.1:${receiver.port}`],
    env: { WEBHOOK_RETRY_SCHEDULE: "60,60", WEBHOOK_WORKER_ID: "portal-health-test-worker" },
  });
  browser = await launchBrowser();
  tab = await openPage(browser);
  page = tab.page;
  page.setDefaultTimeout(10_000);
  token = await signToken(userClaims(world.adminA.userId!));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await dispatcher?.stop();
  await receiver?.close();
  if (settingsBefore) {
    await db.query(
      "update private.webhook_settings set circuit_failure_threshold = $1, circuit_probe_min_seconds = $2, circuit_probe_max_seconds = $3",
      Object.keys(CIRCUIT).map((k) => settingsBefore[k]),
    );
  }
  await db?.end();
});

const button = (name: string) => page.getByRole("button", { name, exact: true });
/** A time as the page shows one of today's (the browser runs en-GB in UTC). */
const clock = (iso: string | Date) =>
  new Date(iso).toLocaleTimeString("en-GB", { timeZone: "UTC", hour: "2-digit", minute: "2-digit", second: "2-digit" });
const health = async (webhookId: string) =>
  (await db.query("select * from public.webhook_endpoint_health where webhook_id = $1", [webhookId])).rows[0];
const deliveriesOf = async (webhookId: string) =>
  (await db.query<{ id: string; state: string; attempt_count: number; last_error: string | null }>(
    "select id, state, attempt_count, last_error from public.webhook_deliveries where webhook_id = $1 order by created_at, ordering_seq nulls last, id",
    [webhookId],
  )).rows;

async function expectInert() {
  expect(await tab.cspViolations(), "no CSP violation").toEqual([]);
  expect(tab.problems, "no page or console error").toEqual([]);
}

async function openEndpoint(id: string) {
  await page.goto(`${env.supabaseUrl}/portal/endpoints/${id}#access_token=${token}`);
  await page.getByRole("group", { name: "Endpoint actions" }).waitFor();
}

describe("endpoint health in the portal", () => {
  const path = "/hooks/flaky";
  let hookId: string;
  let nextProbeAt: Date;

  it("shows an endpoint whose receiver answers 503 as failing, then as circuit open with the next probe", async () => {
    hookId = (await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: receiver.url(path) })).id;
    receiver.trust(path, await admin.revealSecret(hookId));
    receiver.answer(503, path);
    await openEndpoint(hookId);
    await page.locator(".swp-state", { hasText: "Healthy" }).waitFor();

    await button("Send test event").click();
    await page.getByText("Test event sent").waitFor();
    await waitFor("the first failure", async () => (await health(hookId)).consecutive_failures === 1);
    const failing = await health(hookId);
    await page.getByText(`Failing since ${clock(failing.failing_since)} — 1 consecutive failure`).waitFor();

    await button("Send test event").click();
    await waitFor("the circuit to open", async () => (await health(hookId)).state === "circuit_open");
    const open = await health(hookId);
    nextProbeAt = open.next_probe_at;
    expect(open.consecutive_failures).toBe(CIRCUIT.circuit_failure_threshold);
    const sentence = `Circuit open since ${clock(open.circuit_opened_at)} — next probe at ${clock(open.next_probe_at)} (deliveries wait without spending attempts)`;
    await page.getByText(sentence).waitFor(); // by itself: the page refreshes the health
    expect(await page.locator(".swp-state .swp-badge").first().textContent()).toBe("Circuit open");
    expect(await page.locator(".swp-facts").first().textContent()).toContain("503");
    await screenshot(page, "14-endpoint-circuit-open");

    // The list says the same, with the last attempt's status.
    await page.getByRole("navigation", { name: "Webhooks portal" }).getByRole("link", { name: "Endpoints" }).click();
    const row = page.getByRole("table", { name: /^Endpoints/ }).getByRole("row").filter({ hasText: receiver.url(path) });
    await row.getByText(sentence).waitFor();
    expect(await row.getByRole("cell").nth(2).textContent()).toBe("503");
    await screenshot(page, "15-endpoints-circuit-open");
    await expectInert();
  });

  it("shows it healthy again once the receiver answers and a probe succeeds", { timeout: 45_000 }, async () => {
    receiver.answer(200, path);
    const before = receiver.received.length;
    await openEndpoint(hookId);
    // A new delivery, due now: the circuit lets it through as the probe when the probe's time comes.
    await button("Send test event").click();
    const probe = await waitFor("the probe to arrive", () => receiver.received.slice(before).find((r) => r.path === path && r.verifiedWith.length === 1));
    const attempt = await waitFor("the probe's attempt to be recorded", async () =>
      (await db.query("select created_at, duration_ms from public.webhook_delivery_attempts where delivery_id = $1", [probe.id])).rows[0]);
    expect(attempt.created_at.getTime() - attempt.duration_ms, "the probe goes no earlier than the time the page said").toBeGreaterThanOrEqual(nextProbeAt.getTime() - 1000);
    const row = page.locator(".swp-state").first();
    await waitFor("the page to say Healthy", async () => (await row.textContent()) === "Healthy");
    expect(await health(hookId)).toMatchObject({ state: "healthy", consecutive_failures: 0, circuit_opened_at: null, last_status: 200 });
    expect(await page.locator(".swp-facts").first().textContent()).toContain("Last attempt200 at ");
    await screenshot(page, "16-endpoint-healthy-again");
  });
});

describe("ordered delivery in the portal", () => {
  const path = "/hooks/ordered";
  let hookId: string;

  it("creates an ordered endpoint through the form, saying what ordered promises", async () => {
    await page.goto(`${env.supabaseUrl}/portal/endpoints/new#access_token=${token}`);
    await page.getByLabel("Endpoint URL").fill(receiver.url(path));
    await page.getByLabel("Trigger type").selectOption("PROCESS_REVISED");
    const ordered = page.getByRole("radio", { name: "Ordered" });
    expect(await page.getByRole("radio", { name: "Parallel" }).isChecked()).toBe(true);
    expect(await ordered.getAttribute("aria-describedby")).toBeTruthy();
    await page.getByText("Each process's events arrive one at a time, in the order they were committed").waitFor();
    await ordered.check();
    await screenshot(page, "17-new-endpoint-ordered");
    await button("Create endpoint").click();
    await page.getByRole("heading", { name: receiver.url(path), level: 2 }).waitFor();
    hookId = page.url().split("/").pop()!;
    expect((await db.query("select delivery_order from public.webhooks where id = $1", [hookId])).rows[0].delivery_order).toBe("ordered");
    expect(await page.locator(".swp-facts").first().textContent()).toContain("Delivery orderOrdered");

    // Edited back and forth: the edit form starts from what it is.
    await button("Edit").click();
    expect(await page.getByRole("radio", { name: "Ordered" }).isChecked()).toBe(true);
    await page.getByRole("radio", { name: "Parallel" }).check();
    await page.getByText("Every delivery held back for its turn is released at once.").waitFor();
    const order = async () => (await db.query("select delivery_order from public.webhooks where id = $1", [hookId])).rows[0].delivery_order;
    await button("Save changes").click();
    await page.getByText("Saved.").waitFor();
    expect(await order()).toBe("parallel");
    await button("Edit").click();
    expect(await page.getByText("Saved.").count(), "the earlier notice is gone").toBe(0);
    await page.getByRole("radio", { name: "Ordered" }).check();
    await button("Save changes").click();
    await page.getByText("Saved.").waitFor();
    expect(await order()).toBe("ordered");
    await waitFor("the page to show it ordered", async () => (await page.locator(".swp-facts").first().textContent())?.includes("Delivery orderOrdered"));
  });

  it("shows what a held delivery waits for, and cancelling the head lets it go to the receiver", async () => {
    receiver.trust(path, await admin.revealSecret(hookId));
    receiver.answer(503, path);
    // Two test events: no process, so they share the endpoint's own key and go one at a time.
    await button("Send test event").click();
    await page.getByText("Test event sent").waitFor();
    await waitFor("the head to fail once", async () => (await deliveriesOf(hookId))[0]?.attempt_count === 1);
    await button("Send test event").click();
    await page.getByText("Test event sent").waitFor();
    const [head, held] = await deliveriesOf(hookId);
    expect([head!.state, held!.state]).toEqual(["pending", "pending"]);
    receiver.answer(200, path); // the held one would succeed, if only it were sent

    const rows = page.getByRole("table", { name: "Latest deliveries, newest first" }).locator("tbody tr");
    await waitFor("both deliveries listed", async () => (await rows.count()) === 2);
    const waiting = rows.first().getByRole("link", { name: `delivery ${head!.id.slice(0, 8)}` });
    await waiting.waitFor();
    expect(await rows.first().textContent()).toContain(`waiting for delivery ${head!.id.slice(0, 8)}`);
    await screenshot(page, "18-endpoint-ordered-waiting");
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.received.some((r) => r.id === held!.id), "the held delivery is not sent while the head is pending").toBe(false);

    // The held delivery's own page says it too.
    await rows.first().getByRole("link").first().click();
    await page.getByRole("heading", { name: "Delivery", level: 2 }).waitFor();
    expect(page.url()).toContain(held!.id);
    expect(await page.locator(".swp-facts").textContent()).toContain("Next attemptwhen the delivery it waits for has ended");

    await page.getByRole("link", { name: `delivery ${head!.id.slice(0, 8)}` }).click();
    await page.waitForURL(new RegExp(`/portal/deliveries/${head!.id}$`));
    await button("Cancel delivery…").click();
    const dialog = page.getByRole("dialog", { name: "Cancel this delivery?" });
    await dialog.waitFor();
    await screenshot(page, "19-cancel-delivery-dialog");
    await dialog.getByRole("button", { name: "Keep it" }).click();
    expect((await deliveriesOf(hookId))[0]!.state).toBe("pending");

    await button("Cancel delivery…").click();
    await dialog.getByRole("button", { name: "Cancel delivery" }).click();
    await page.getByText("Cancelled: it is not sent again.").waitFor();
    expect((await deliveriesOf(hookId))[0]).toMatchObject({ id: head!.id, state: "cancelled", last_error: "cancelled by an admin" });
    await page.locator(".swp-facts .swp-badge", { hasText: "cancelled" }).waitFor();
    expect(await page.locator(".swp-facts").textContent()).toContain("Why cancelledcancelled by an admin");

    // At once: well within the 30 s a sleeping dispatcher would otherwise wait before looking again.
    const arrived = await waitFor("the held delivery to arrive", () => receiver.received.find((r) => r.id === held!.id), 8_000);
    expect(arrived.verifiedWith).toHaveLength(1);
    await waitFor("it to succeed", async () => (await deliveriesOf(hookId))[1]!.state === "succeeded");
    await expectInert();
  });

  it("says in plain words that a delivery which ended meanwhile cannot be cancelled", async () => {
    receiver.answer(503, path);
    const id = await admin.sendTest(hookId);
    await waitFor("it to fail once", async () => (await deliveriesOf(hookId)).find((d) => d.id === id)?.attempt_count === 1);
    await page.goto(`${env.supabaseUrl}/portal/deliveries/${id}#access_token=${token}`);
    await button("Cancel delivery…").click();
    const dialog = page.getByRole("dialog", { name: "Cancel this delivery?" });
    await dialog.waitFor();
    await admin.cancelDelivery(id); // someone else ends it first
    await dialog.getByRole("button", { name: "Cancel delivery" }).click();
    await page
      .getByRole("alert")
      .getByText("This delivery has already ended, so there is nothing to cancel. Only pending deliveries can be cancelled; redeliver it to send it again.")
      .waitFor();
    await page.locator(".swp-facts .swp-badge", { hasText: "cancelled" }).waitFor();
    expect(await button("Cancel delivery…").count()).toBe(0);
    await screenshot(page, "20-cancel-already-ended");
    await expectInert();
  });
});

describe("an endpoint's own limit in the portal", () => {
  it("sets most requests at once and per second through the form; a bad value is refused beside its field and changes nothing", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_DELETED", url: receiver.url("/hooks/limited") });
    const limit = async () => (await db.query("select max_concurrent_requests from public.webhooks where id = $1", [hook.id])).rows[0].max_concurrent_requests;
    await openEndpoint(hook.id);
    const field = () => page.getByLabel("Most requests at once (optional)");
    const rule = "Most requests at once must be a whole number from 1 to 1000, or empty for the deployment's limit.";

    // Not a number: refused by the form. Out of range: refused by the database's rule. Neither changes anything.
    for (const bad of ["a few", "0", "1001"]) {
      await button("Edit").click();
      await field().fill(bad);
      await button("Save changes").click();
      await page.getByRole("alert").getByText(rule).waitFor();
      expect(await field().getAttribute("aria-invalid"), `"${bad}" is marked invalid`).toBe("true");
      expect(await limit(), `"${bad}" changed nothing`).toBeNull();
      await button("Cancel").click();
    }

    await button("Edit").click();
    expect(await field().inputValue(), "empty: no limit of its own").toBe("");
    await field().fill("3");
    await button("Save changes").click();
    await page.getByText("Saved.").waitFor();
    expect(await limit()).toBe(3);
    await waitFor("the page to show the limit and what it allows", async () => {
      const facts = (await page.locator(".swp-facts").first().textContent()) ?? "";
      return facts.includes("Limit set for this endpoint: 3 requests at once.") && facts.includes("up to 3 requests at once");
    });
    expect((await health(hook.id)).concurrency).toBe(3);
    await screenshot(page, "21-endpoint-own-limit");

    // The rate, the same way.
    const rateField = () => page.getByLabel("Most requests per second (optional)");
    const rate = async () => (await db.query("select max_requests_per_second from public.webhooks where id = $1", [hook.id])).rows[0].max_requests_per_second;
    const rateRule = "Most requests per second must be a whole number from 1 to 10,000, or empty for no limit.";
    for (const bad of ["fast", "10001"]) {
      await button("Edit").click();
      await rateField().fill(bad);
      await button("Save changes").click();
      await page.getByRole("alert").getByText(rateRule).waitFor();
      expect(await rate(), `"${bad}" changed nothing`).toBeNull();
      await button("Cancel").click();
    }
    await button("Edit").click();
    await rateField().fill("20");
    await button("Save changes").click();
    await page.getByText("Saved.").waitFor();
    expect(await rate()).toBe(20);
    await waitFor("the page to show the rate", async () =>
      ((await page.locator(".swp-facts").first().textContent()) ?? "").includes("Rate set for this endpoint: 20 requests per second at most, on average."));

    await button("Edit").click();
    expect(await field().inputValue(), "the edit form starts from the limit").toBe("3");
    expect(await rateField().inputValue(), "and from the rate").toBe("20");
    await field().fill("");
    await rateField().fill("");
    await button("Save changes").click();
    await page.getByText("Saved.").waitFor();
    expect(await limit()).toBeNull();
    expect(await rate()).toBeNull();
    await waitFor("the page to show the deployment's limit again", async () =>
      !((await page.locator(".swp-facts").first().textContent()) ?? "").includes("Limit set for this endpoint"));
    await expectInert();
  });

  it("says while the endpoint's own rate holds its deliveries back, and no more once the rate is gone", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_DELETED", url: receiver.url("/hooks/one-a-second"), maxRequestsPerSecond: 1 });
    for (let i = 0; i < 8; i++) await admin.sendTest(hook.id);
    await openEndpoint(hook.id);
    // The dispatcher sends one a second; the page's health poll says why the rest wait.
    const heldBack = page.getByRole("status").getByText("Deliveries are waiting for these limits now");
    await heldBack.waitFor();
    expect((await deliveriesOf(hook.id)).filter((d) => d.state === "pending").length, "some still wait").toBeGreaterThan(1);
    await screenshot(page, "22-endpoint-held-back-by-its-rate");

    await admin.updateWebhook(hook.id, { maxRequestsPerSecond: null });
    await waitFor("the rest to go at once", async () => (await deliveriesOf(hook.id)).every((d) => d.state === "succeeded"));
    await heldBack.waitFor({ state: "detached" });
    await expectInert();
  });

  it("says while an endpoint waits for the company's share of requests, and no more once a slot frees", async () => {
    const shareBefore = (await db.query("select company_concurrency from private.webhook_settings")).rows[0].company_concurrency;
    const busyPath = "/hooks/holds-the-share";
    receiver.hold(busyPath);
    try {
      // A share of one request, taken by another endpoint of the company whose receiver hangs.
      await db.query("update private.webhook_settings set company_concurrency = 1");
      const busy = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_DELETED", url: receiver.url(busyPath) });
      await admin.sendTest(busy.id);
      await waitFor("the other endpoint's request to hang", () => receiver.received.some((r) => r.path === busyPath));
      const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_DELETED", url: receiver.url("/hooks/waits-for-the-share") });
      await admin.sendTest(hook.id);
      await openEndpoint(hook.id);
      const waiting = page.getByRole("status").getByText("Deliveries are waiting for your company's share of requests in flight");
      await waiting.waitFor();
      expect((await deliveriesOf(hook.id)).map((d) => d.state), "its delivery waits").toEqual(["pending"]);
      await screenshot(page, "23-endpoint-waiting-for-the-company-share");

      receiver.release(busyPath);
      await waitFor("its delivery to go once the slot frees", async () => (await deliveriesOf(hook.id)).every((d) => d.state === "succeeded"));
      await waiting.waitFor({ state: "detached" });
      await expectInert();
    } finally {
      receiver.release(busyPath);
      await db.query("update private.webhook_settings set company_concurrency = $1", [shareBefore]);
    }
  });
});

// The portal end to end, as an ADMIN uses it: the standalone page the gateway serves at
// /portal, signed in with #access_token, in headless Chromium, against PostgREST, the real
// dispatcher and a receiver that verifies every signature. Elements are found by role and
// accessible name. Tenant- and receiver-controlled text (a description, response bodies)
// is full of markup and script and must stay text. Screenshots go to .local/portal-screenshots/.
import type { Browser, Page } from "playwright-core";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, openPage, screenshot, type Recorded } from "../support/browser.ts";
import { startDispatcher } from "../support/dispatcher.ts";
import { HOSTILE_BODY, startReceiver, waitFor } from "../support/receiver.ts";
import { createWorld, env, signToken, superuser, userClaims } from "../support/world.ts";

const HOSTILE_DESCRIPTION = `<img src=x onerror="window.__pwned='description img'"><script>window.__pwned='description script'</script> ERP <b>sync</b>`;

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let browser: Browser;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dispatcher: Awaited<ReturnType<typeof startDispatcher>>;
let tab: Recorded;
let page: Page;
let token: string;

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  receiver = await startReceiver();
  dispatcher = await startDispatcher({ dbUrl: env.dbUrl, allowedTargets: [`127.0.0.1:${receiver.port}`] });
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
  await db?.end();
});

const button = (name: string | RegExp) => page.getByRole("button", { name, exact: typeof name === "string" });
const deliveriesOfA = async () =>
  (await db.query<{ id: string; state: string }>("select id, state from public.webhook_deliveries where company_id = $1", [world.companyA])).rows;

/** The rows of the table captioned `caption` (data rows only). */
function rowsOf(caption: string) {
  return page.getByRole("table", { name: caption }).locator("tbody tr");
}

async function expectInert() {
  expect(await tab.pwned(), "no hostile script ran").toBeUndefined();
  expect(await tab.cspViolations(), "no CSP violation").toEqual([]);
  expect(tab.problems, "no page or console error").toEqual([]);
}

describe("the portal as an ADMIN", () => {
  let hookId: string;
  const hookPath = "/hooks/erp";

  it("signs in from the URL fragment and takes the token out of the address bar", async () => {
    await page.goto(`${env.supabaseUrl}/portal#access_token=${token}`);
    await page.getByRole("heading", { name: "Endpoints", level: 2 }).waitFor();
    expect(page.url()).toBe(`${env.supabaseUrl}/portal`);
    await screenshot(page, "01-endpoints-empty");
  });

  it("shows the rule a bad URL breaks, next to the field, and creates nothing", async () => {
    await page.getByRole("link", { name: "New endpoint" }).click();
    const url = page.getByLabel("Endpoint URL");
    await url.fill("ftp://files.acme.test/drop");
    await button("Create endpoint").click();
    const error = page.getByText("Url must start with http:// or https://.");
    await error.waitFor();
    expect(await url.getAttribute("aria-invalid")).toBe("true");
    expect(await url.getAttribute("aria-describedby")).toContain(await error.getAttribute("id"));

    await url.fill("https://user:secret@erp.acme.test/hook");
    await button("Create endpoint").click();
    await page.getByText("Url must not contain user:password@.").waitFor();
    await screenshot(page, "02-new-endpoint-bad-url");

    const { rows } = await db.query("select count(*)::int as n from public.webhooks where company_id = $1", [world.companyA]);
    expect(rows[0].n).toBe(0);
  });

  it("creates an endpoint whose description is markup, shown as text", async () => {
    await page.getByLabel("Endpoint URL").fill(receiver.url(hookPath));
    await page.getByLabel("Trigger type").selectOption("PROCESS_REVISED");
    await page.getByLabel("Description (optional)").fill(HOSTILE_DESCRIPTION);
    await button("Create endpoint").click();
    await page.getByRole("heading", { name: receiver.url(hookPath), level: 2 }).waitFor();
    hookId = page.url().split("/").pop()!;
    expect(hookId).toMatch(/^[0-9a-f-]{36}$/);
    await page.getByText(HOSTILE_DESCRIPTION, { exact: true }).waitFor();
    expect(await page.locator(".swp-portal img, .swp-portal b, .swp-portal script").count()).toBe(0);
    await expectInert();
  });

  it("reveals the secret on demand, and the receiver verifies a test event signed with it", async () => {
    await button("Reveal secret").click();
    const secret = (await page.getByLabel("Secret value").textContent())!;
    const stored = await db.query("select secret from private.webhook_secrets where webhook_id = $1", [hookId]);
    expect(secret).toBe(stored.rows[0].secret);
    receiver.trust(hookPath, secret);

    await button("Send test event").click();
    await page.getByText("Test event sent").waitFor();
    // It shows up in the endpoint's latest deliveries by itself (no reload), as succeeded.
    const rows = rowsOf("Latest deliveries, newest first");
    await waitFor("the test delivery to show as succeeded", async () => (await rows.first().textContent())?.includes("succeeded"));
    expect(await rows.count()).toBe(1);
    const arrived = await waitFor("the receiver to get it", () => receiver.received.find((r) => r.path === hookPath));
    expect(arrived.verifiedWith).toEqual([secret]);
    expect(JSON.parse(arrived.body)).toMatchObject({ type: "WEBHOOK_TEST", company_id: world.companyA });
    await screenshot(page, "03-endpoint");
  });

  it("opens the delivery: payload, headers as sent with the signature redacted, the attempt with the receiver's body as text", async () => {
    await rowsOf("Latest deliveries, newest first").first().getByRole("link").click();
    await page.getByRole("heading", { name: "Delivery", level: 2 }).waitFor();
    const deliveryId = receiver.received[0]!.id;
    expect(page.url()).toContain(`/portal/deliveries/${deliveryId}`);
    expect(await page.getByLabel("Payload").textContent()).toContain('"type": "WEBHOOK_TEST"');

    const headers = page.getByRole("table", { name: /Headers as sent/ });
    expect(await headers.getByRole("row", { name: /webhook-id/ }).textContent()).toContain(deliveryId);
    expect(await headers.getByRole("row", { name: /webhook-signature/ }).textContent()).toContain("v1,<redacted>");
    expect(await headers.textContent()).not.toContain(receiver.received[0]!.signature.split(",")[1]);
    const sentAt = Number((await headers.getByRole("row", { name: /webhook-timestamp/ }).locator("td").first().textContent())!);
    expect(Math.abs(sentAt - Math.floor(Date.now() / 1000))).toBeLessThan(120);

    const attempts = rowsOf("Attempts, first to last");
    expect(await attempts.count()).toBe(1);
    expect(await attempts.first().textContent()).toContain("200");
    await page.getByText(/Response body of attempt 1/).click();
    expect(await page.getByLabel("Response body of attempt 1").textContent()).toBe(HOSTILE_BODY);
    await screenshot(page, "04-delivery");
    await expectInert();
  });

  it("redelivers: a new delivery with a new webhook-id reaches the receiver, verified", async () => {
    await button("Redeliver").click();
    await page.getByText("Sent again as a new delivery").waitFor();
    const again = await waitFor("the redelivery", () => receiver.received[1]);
    expect(again.id).not.toBe(receiver.received[0]!.id);
    expect(again.verifiedWith.length).toBe(1);
    expect(again.body).toBe(receiver.received[0]!.body);
  });

  it("rotates the secret after saying the old one keeps signing for 24 h; both sign from then on", async () => {
    await page.getByRole("link", { name: receiver.url(hookPath) }).click();
    await page.getByRole("heading", { name: receiver.url(hookPath), level: 2 }).waitFor();
    await button("Reveal secret").click();
    const before = (await page.getByLabel("Secret value").textContent())!;
    await button("Rotate secret…").click();
    const dialog = page.getByRole("dialog", { name: "Rotate the signing secret?" });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain("keeps signing alongside it for 24 hours");
    await screenshot(page, "05-rotate-secret-dialog");
    await dialog.getByRole("button", { name: "Rotate secret" }).click();
    await page.getByText("Rotated.").waitFor();
    const after = (await page.getByLabel("Secret value").textContent())!;
    expect(after).not.toBe(before);
    expect(after).toMatch(/^whsec_/);
    receiver.trust(hookPath, after, before);

    const count = receiver.received.length;
    await button("Send test event").click();
    const next = await waitFor("a delivery after the rotation", () => receiver.received[count]);
    expect(next.verifiedWith.sort()).toEqual([after, before].sort());
  });

  it("disables and enables the endpoint", async () => {
    await button("Disable").click();
    await page.getByText("disabled by an admin").waitFor();
    expect(await button("Send test event").isDisabled()).toBe(true);
    await screenshot(page, "06-endpoint-disabled");
    await button("Enable").click();
    await page.getByText("Enabled.").waitFor();
    const state = await db.query("select is_active, disabled_reason from public.webhooks where id = $1", [hookId]);
    expect(state.rows[0]).toEqual({ is_active: true, disabled_reason: null });
  });

  it("replays since a time: shows how many events it will send before sending them", async () => {
    // A delivery that never arrives: the receiver fails it, then the endpoint is disabled (cancelling it).
    receiver.answer(500);
    await button("Send test event").click();
    await waitFor("a failed attempt", async () => {
      const { rows } = await db.query("select 1 from public.webhook_delivery_attempts a join public.webhook_deliveries d on d.id = a.delivery_id where d.webhook_id = $1 and a.status = 500", [hookId]);
      return rows.length > 0;
    });
    await button("Disable").click();
    await page.getByText("disabled by an admin").waitFor();
    await button("Enable").click();
    await page.getByText("Enabled.").waitFor();
    receiver.answer(200);
    const cancelled = (await deliveriesOfA()).filter((d) => d.state === "cancelled");
    expect(cancelled).toHaveLength(1);

    await button("Count events to replay").click();
    await page.getByText("1 event will be sent again to this endpoint.").waitFor();
    await screenshot(page, "07-replay-count");
    const count = receiver.received.length;
    await button("Replay 1 event").click();
    await page.getByText("Replayed 1 event").waitFor();
    const replayed = await waitFor("the replayed event", () => receiver.received.slice(count).find((r) => r.verifiedWith.length > 0 && r.body.includes("WEBHOOK_TEST")));
    expect(replayed.id).not.toBe(cancelled[0]!.id);
  });

  it("charts the last 24 hours by outcome (after a reload, still signed in)", async () => {
    await page.reload();
    const chart = page.getByRole("img", { name: /Deliveries per hour by outcome/ });
    await chart.waitFor();
    const label = (await chart.getAttribute("aria-label"))!;
    const total = Number(/: (\d+) deliveries in the last 24 hours/.exec(label)![1]);
    const { rows } = await db.query("select count(*)::int as n from public.webhook_deliveries where webhook_id = $1", [hookId]);
    expect(total).toBe(rows[0].n);
    expect(label).toMatch(/1 cancelled/);
    await page.getByText("Show as a table").click();
    expect(await rowsOf("Deliveries per hour by outcome, per hour").count()).toBe(24);
    await screenshot(page, "08-endpoint-chart");
  });

  it("pages through the deliveries log and filters it by state and trigger type", async () => {
    // 55 more deliveries made by one statement (one created_at for all: only the id orders them).
    await db.query("insert into public.webhooks (company_id, trigger_type, url) values ($1, 'PROCESS_CREATED', $2)", [world.companyA, receiver.url("/hooks/bulk")]);
    await db.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', jsonb_build_object('n', g)) from generate_series(1, 55) g", [world.companyA]);
    const all = (await deliveriesOfA()).map((d) => d.id);
    expect(all.length).toBeGreaterThan(55);

    await page.getByRole("navigation", { name: "Webhooks portal" }).getByRole("link", { name: "Deliveries" }).click();
    await page.getByRole("heading", { name: "Deliveries", level: 2 }).waitFor();
    const rows = rowsOf("Deliveries, newest first");
    const ids = async () => (await rows.getByRole("link").evaluateAll((links) => links.map((a) => a.getAttribute("href")!.split("/").pop()!)));
    await waitFor("a full first page", async () => (await rows.count()) === 50);
    const first = await ids();
    await screenshot(page, "09-deliveries-log");
    await button("Older").click();
    await waitFor("the second page", async () => (await rows.count()) === all.length - 50);
    const second = await ids();
    expect(await button("Older").isDisabled()).toBe(true);
    expect(new Set([...first, ...second])).toEqual(new Set(all)); // every delivery once, across the tie
    await button("Newer").click();
    await waitFor("the first page again", async () => (await rows.count()) === 50);
    expect(await ids()).toEqual(first);

    await page.getByLabel("State").selectOption("cancelled");
    await waitFor("only the cancelled one", async () => (await rows.count()) === 1 && (await rows.first().textContent())?.includes("cancelled"));
    expect(page.url()).toContain("state=cancelled");
    await page.getByLabel("State").selectOption("");
    await page.getByLabel("Trigger type").selectOption("PROCESS_REVISED");
    await page.getByText("No deliveries match.").waitFor();
    await page.getByLabel("Trigger type").selectOption("WEBHOOK_TEST");
    await waitFor("the test deliveries only", async () => {
      const texts = await rows.allTextContents();
      return texts.length === all.length - 55 && texts.every((t) => t.includes("WEBHOOK_TEST"));
    });
    await page.getByRole("button", { name: "Clear filters" }).click();
    await waitFor("a full page again", async () => (await rows.count()) === 50);
  });

  it("shows the event catalogue with an example payload per type", async () => {
    await page.getByRole("link", { name: "Event types" }).click();
    for (const type of ["PROCESS_CREATED", "PROCESS_REVISED", "PROCESS_DELETED", "WEBHOOK_TEST"]) {
      await page.getByRole("heading", { name: type, level: 3 }).waitFor();
      expect(await page.getByLabel(`Example payload of ${type}`).textContent()).toContain(`"type": "${type}"`);
    }
    await screenshot(page, "10-event-types");
  });

  it("moves through the pages with the keyboard, with a visible focus ring", async () => {
    await page.getByRole("link", { name: "Endpoints", exact: true }).focus();
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { text: el.textContent, outline: style.outlineStyle, width: style.outlineWidth };
    });
    expect(focused.text).toBe("Deliveries");
    expect(focused.outline).toBe("solid");
    expect(focused.width).toBe("3px");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Deliveries", level: 2 }).waitFor();
  });

  it("deletes the endpoint after a confirmation", async () => {
    await page.goto(`${env.supabaseUrl}/portal/endpoints/${hookId}#access_token=${token}`);
    await button("Delete…").click();
    const dialog = page.getByRole("dialog", { name: "Delete this endpoint?" });
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect((await db.query("select 1 from public.webhooks where id = $1", [hookId])).rowCount).toBe(1);
    await button("Delete…").click();
    await dialog.getByRole("button", { name: "Delete endpoint" }).click();
    await page.getByText(`Deleted the endpoint ${receiver.url(hookPath)}.`).waitFor();
    expect((await db.query("select 1 from public.webhooks where id = $1", [hookId])).rowCount).toBe(0);
    await expectInert();

    // Its log stays, naming the deleted endpoint (migration 20261130120000), and says so.
    const { rows } = await db.query("select id from public.webhook_deliveries where webhook_id = $1 order by created_at desc limit 1", [hookId]);
    expect(rows).toHaveLength(1);
    await page.goto(`${env.supabaseUrl}/portal/deliveries/${rows[0].id}#access_token=${token}`);
    await page.getByText("(deleted)", { exact: true }).waitFor();
    expect(await button("Redeliver").isDisabled()).toBe(true);
    await page.goto(`${env.supabaseUrl}/portal/deliveries?endpoint=${hookId}#access_token=${token}`);
    await page.getByRole("cell", { name: "(endpoint deleted)" }).first().waitFor();
  });

  it("never sent the token anywhere but in the Authorization header to its own API", async () => {
    const origin = new URL(env.supabaseUrl).origin;
    for (const request of tab.requests) {
      const headers = await request.allHeaders();
      expect(headers.referer ?? "", `Referer of ${request.url()}`).toBe("");
      expect(request.url()).not.toContain(token);
      for (const [name, value] of Object.entries(headers)) {
        if (value.includes(token)) {
          expect(name).toBe("authorization");
          expect(request.url().startsWith(`${origin}/rest/v1/`)).toBe(true);
        }
      }
    }
    // And no answer the page got holds another company's rows.
    expect(tab.apiBodies.some((b) => b.includes(world.companyB))).toBe(false);
  });
});

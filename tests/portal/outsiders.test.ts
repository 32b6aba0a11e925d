// Who sees what, in the browser: a MEMBER, an OPERATOR, an inactive ADMIN, a user with no
// profile, an expired or forged token, no token at all, and an ADMIN of another company
// opening the URLs of company A's endpoint and delivery. Each gets a clear screen and no
// data: no response the page receives holds any of A's ids or its endpoint's URL.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PORTAL_APP_DIR } from "../../scripts/build.mjs";
import { portalHandler } from "../../scripts/lib/portal-static.mjs";
import { createWebhooksClient } from "../../src/index.ts";
import { launchBrowser, openPage, screenshot, type Recorded } from "../support/browser.ts";
import { createWorld, env, signToken, superuser, userClaims } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let browser: Browser;
let secretsOfA: string[];
let hookA: string;
let deliveryA: string;
const urlA = "https://secret-erp.acme.test/serial";

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  const adminA = createWebhooksClient(world.adminA.client);
  hookA = (await adminA.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: urlA, description: "A's own" })).id;
  deliveryA = await adminA.sendTest(hookA);
  secretsOfA = [world.companyA, hookA, deliveryA, urlA, "A's own"];
  const adminB = createWebhooksClient(world.adminB.client);
  await adminB.createWebhook({ companyId: world.companyB, triggerType: "PROCESS_CREATED", url: "https://hooks.bolt.test/b" });
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await db?.end();
});

async function operatorToken() {
  const email = `operator-${world.tag}@test.local`;
  const { rows } = await db.query<{ id: string }>("insert into auth.users (id, email) values (gen_random_uuid(), $1) returning id", [email]);
  await db.query("insert into public.users (supabase_uid, company_id, email, role) values ($1, $2, $3, 'OPERATOR')", [rows[0]!.id, world.companyA, email]);
  return signToken(userClaims(rows[0]!.id));
}

async function visit(path: string, token: string | null): Promise<Recorded> {
  const tab = await openPage(browser);
  tab.page.setDefaultTimeout(10_000);
  await tab.page.goto(`${env.supabaseUrl}${path}${token ? `#access_token=${token}` : ""}`);
  return tab;
}

function expectNothingOfA(tab: Recorded) {
  for (const body of tab.apiBodies) {
    for (const secret of secretsOfA) expect(body, "a response the page received").not.toContain(secret);
  }
}

async function expectNothingOfAOnScreen(tab: Recorded) {
  const text = await tab.page.locator("body").innerText();
  for (const secret of secretsOfA) expect(text).not.toContain(secret);
}

describe("the portal for people who may not manage A's webhooks", () => {
  const notAllowed: [string, () => Promise<string>][] = [
    ["a MEMBER of A", () => signToken(userClaims(world.memberA.userId!))],
    ["an OPERATOR of A", operatorToken],
    ["an inactive ADMIN of A", () => signToken(userClaims(world.inactiveAdminA.userId!))],
    ["a signed-up user without a profile", () => signToken(userClaims(world.noProfile.userId!))],
  ];
  for (const [who, token] of notAllowed) {
    it(`${who}: "Not allowed", and no data`, async () => {
      const signedIn = await token();
      for (const path of [`/portal/endpoints/${hookA}`, `/portal/deliveries/${deliveryA}`, "/portal/deliveries"]) {
        const tab = await visit(path, signedIn);
        await tab.page.getByRole("heading", { name: "Not allowed", level: 1 }).waitFor();
        expect(await tab.page.getByRole("navigation").count()).toBe(0);
        expectNothingOfA(tab);
        await expectNothingOfAOnScreen(tab);
        if (who === "a MEMBER of A" && path.endsWith("/deliveries")) await screenshot(tab.page, "11-not-allowed");
        await tab.page.context().close();
      }
    });
  }

  const signedOut: [string, () => Promise<string | null>][] = [
    ["an expired token", () => signToken(userClaims(world.adminA.userId!), { expiresIn: -60 })],
    ["a token signed with another key", () => signToken(userClaims(world.adminA.userId!), { secret: "not-the-project-secret-but-at-least-32-chars" })],
    ["no token at all", async () => null],
  ];
  for (const [who, token] of signedOut) {
    it(`${who}: "Signed out", and no data`, async () => {
      const tab = await visit(`/portal/endpoints/${hookA}`, await token());
      await tab.page.getByRole("heading", { name: "Signed out", level: 1 }).waitFor();
      expectNothingOfA(tab);
      await expectNothingOfAOnScreen(tab);
      if (who === "an expired token") await screenshot(tab.page, "12-signed-out");
      await tab.page.context().close();
    });
  }

  it("a session that expires while the page is open ends on \"Signed out\", with nothing left on screen", async () => {
    // PostgREST accepts a token up to 30 s past its exp (clock skew): this one has ~5 s left.
    const tab = await visit("/portal/", await signToken(userClaims(world.adminA.userId!), { expiresIn: -25 }));
    await tab.page.getByRole("heading", { name: "Endpoints", level: 2 }).waitFor();
    const nav = tab.page.getByRole("navigation", { name: "Webhooks portal" });
    const signedOut = tab.page.getByRole("heading", { name: "Signed out", level: 1 });
    // Move between pages (each asks the API again) until the server refuses the token.
    const deadline = Date.now() + 45_000;
    for (let i = 0; !(await signedOut.isVisible()); i++) {
      expect(Date.now() < deadline, "the expired session never showed Signed out").toBe(true);
      await nav.getByRole("link", { name: i % 2 ? "Endpoints" : "Deliveries" }).click({ timeout: 2000 }).catch(() => {});
      await tab.page.waitForTimeout(500);
    }
    await expectNothingOfAOnScreen(tab);
    await tab.page.context().close();
  }, 60_000);

  it("an ADMIN of company B opening A's endpoint and delivery by URL: \"Not found\", and only B's own rows anywhere", async () => {
    const token = await signToken(userClaims(world.adminB.userId!));
    const endpoint = await visit(`/portal/endpoints/${hookA}`, token);
    await endpoint.page.getByRole("heading", { name: "Not found", level: 2 }).waitFor();
    await screenshot(endpoint.page, "13-other-company-not-found");

    // The same tab (signed in for this tab) walks on to A's delivery and to a log filtered on A's endpoint.
    await endpoint.page.goto(`${env.supabaseUrl}/portal/deliveries/${deliveryA}`);
    await endpoint.page.getByRole("heading", { name: "Not found", level: 2 }).waitFor();
    await endpoint.page.goto(`${env.supabaseUrl}/portal/deliveries?endpoint=${hookA}`);
    await endpoint.page.getByText("No deliveries match.").waitFor();
    await endpoint.page.goto(`${env.supabaseUrl}/portal/`);
    await endpoint.page.getByRole("link", { name: "https://hooks.bolt.test/b" }).waitFor();

    expect(endpoint.apiBodies.length).toBeGreaterThan(5);
    expectNothingOfA(endpoint);
    await expectNothingOfAOnScreen(endpoint);
    expect(endpoint.problems).toEqual([]);
    await endpoint.page.context().close();
  });
});

describe("the page itself", () => {
  it("is served with a strict CSP, no referrer, no framing, no sniffing, and only the anon key", async () => {
    const response = await fetch(`${env.supabaseUrl}/portal/deliveries`);
    expect(response.status).toBe(200);
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    expect(response.headers.get("x-frame-options")).toBe("DENY");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await response.text();
    expect(html).toContain(`content="${env.anonKey}"`);
    expect(html).not.toContain(env.serviceRoleKey);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
  });

  it("serves no file outside the built page, whatever the path says", async () => {
    // fetch() and the gateway's URL parsing normalize `..` away before the portal sees it;
    // a raw request line reaches the handler's own guard.
    const handler = portalHandler({ dir: PORTAL_APP_DIR, anonKey: env.anonKey });
    const server = http.createServer((req, res) => handler(req, res, req.url ?? "/"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const get = (rawPath: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path: rawPath }, (res) => {
          let body = "";
          res.on("data", (chunk) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        }).on("error", reject);
      });
    try {
      for (const raw of ["/portal/assets/../../../package.json", "/portal/assets/../../package.json", "/portal/assets/%2e%2e/%2e%2e/package.json"]) {
        const { status, body } = await get(raw);
        expect(status, raw).toBe(404);
        expect(body, raw).not.toContain("@serial/webhooks");
      }
      const asset = fs.readdirSync(path.join(PORTAL_APP_DIR, "assets")).find((f) => f.endsWith(".js"))!;
      expect((await get(`/portal/assets/${asset}`)).status, "a real asset is served").toBe(200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("cannot be framed by another origin", async () => {
    // A page of another origin (another port) that frames the portal, and a check that
    // the same page does render a frameable document, so the test can see a frame load.
    const framer = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(req.url === "/control" ? "<p id=control>framed</p>" : `<iframe src="${req.url === "/self" ? "/control" : `${env.supabaseUrl}/portal/`}"></iframe>`);
    });
    await new Promise<void>((resolve) => framer.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(framer.address() as AddressInfo).port}`;
    const tab = await openPage(browser);
    try {
      const childCount = async (path: string, selector: string) => {
        await tab.page.goto(`${origin}${path}`);
        await tab.page.waitForTimeout(1000);
        const frame = tab.page.frames().find((f) => f !== tab.page.mainFrame());
        return frame ? frame.locator(selector).count() : -1;
      };
      expect(await childCount("/self", "#control")).toBe(1);
      expect(await childCount("/portal", "#root")).toBe(0);
    } finally {
      await tab.page.context().close();
      await new Promise((resolve) => framer.close(resolve));
    }
  });
});

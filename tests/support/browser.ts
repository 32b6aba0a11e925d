// Debian's Chromium, headless, driven by playwright-core: what the portal's browser tests
// run in. Each page records what a test asserts on besides the screen: every response of
// the REST API (to prove no other company's row ever arrives), requests (to prove the
// token never leaves), console errors, page errors and CSP violations; and a flag a hostile
// script would set (window.__pwned).
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page, type Request } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SCREENSHOTS = path.resolve(import.meta.dirname, "..", "..", ".local", "portal-screenshots");

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's Chromium (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export interface Recorded {
  page: Page;
  /** Bodies of every /rest/v1 response, as text. */
  apiBodies: string[];
  requests: Request[];
  problems: string[];
  /** CSP violations the page reported (securitypolicyviolation events). */
  cspViolations: () => Promise<string[]>;
  pwned: () => Promise<unknown>;
}

export async function openPage(browser: Browser): Promise<Recorded> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB", timezoneId: "UTC" });
  const page = await context.newPage();
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => w.__csp.push(`${e.violatedDirective}: ${e.blockedURI}`));
  });
  const recorded: Recorded = {
    page,
    apiBodies: [],
    requests: [],
    problems: [],
    cspViolations: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp ?? []),
    pwned: () => page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned),
  };
  page.on("request", (r) => recorded.requests.push(r));
  page.on("response", async (response) => {
    if (!response.url().includes("/rest/v1/")) return;
    try {
      recorded.apiBodies.push(await response.text());
    } catch {
      // a response the page navigated away from: nothing to read
    }
  });
  page.on("pageerror", (e) => recorded.problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // A 4xx answer the portal handles (e.g. 401 for an expired token) is logged by Chromium as a failed resource; not a problem.
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) recorded.problems.push(`console: ${m.text()}`);
  });
  return recorded;
}

export async function screenshot(page: Page, name: string) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

// A webhook receiver for the browser tests: a real HTTP server on 127.0.0.1 that verifies
// every request's Standard Webhooks signature with `standardwebhooks` (against every secret
// it was given for that path), records what arrived, and answers as told (status, and a
// body full of markup and script, which the portal must show as text), at once or, for a
// path it is told to hold, once released (a receiver that hangs).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Received {
  path: string;
  id: string;
  body: string;
  signature: string;
  /** The secrets (of those given for the path) that verify this request. */
  verifiedWith: string[];
}

export const HOSTILE_BODY = `<script>window.__pwned = "response script"</script><img src=x onerror="window.__pwned='response img'">ok`;

export async function startReceiver() {
  const secrets = new Map<string, string[]>();
  const received: Received[] = [];
  let status = 200;
  const statusOf = new Map<string, number>();
  const holding = new Set<string>();
  const held: Array<{ path: string; answer: () => void }> = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      const path = req.url ?? "/";
      const verifiedWith = (secrets.get(path) ?? []).filter((secret) => {
        try {
          new Webhook(secret).verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      received.push({ path, id: headers["webhook-id"] ?? "", body, signature: headers["webhook-signature"] ?? "", verifiedWith });
      const answer = () => {
        res.writeHead(statusOf.get(path) ?? status, { "content-type": "text/html" });
        res.end(HOSTILE_BODY);
      };
      if (holding.has(path)) held.push({ path, answer });
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    received,
    /** Secrets a request to `path` may be signed with (current first). */
    trust(path: string, ...keys: string[]) {
      secrets.set(path, keys);
    },
    /** Answer every request with this status from now on, or only those to `path`. */
    answer(next: number, path?: string) {
      if (path === undefined) status = next;
      else statusOf.set(path, next);
    },
    /** Leave every request to `path` unanswered (it is still recorded) until release(path). */
    hold(path: string) {
      holding.add(path);
    },
    /** Answer what was held for `path`, and everything after it at once. */
    release(path: string) {
      holding.delete(path);
      const released = held.filter((h) => h.path === path);
      held.splice(0, held.length, ...held.filter((h) => h.path !== path));
      for (const h of released) h.answer();
    },
    close: () => {
      holding.clear();
      for (const h of held.splice(0)) h.answer();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

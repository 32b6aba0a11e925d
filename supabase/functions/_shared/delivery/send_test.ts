import assert from "node:assert/strict";
import { MAX_RESPONSE_CHARS, type SendOptions, sendWebhook, USER_AGENT } from "./send.ts";
import type { TargetVerdict } from "./ssrf.ts";
import { gate, startReceiver, unusedPort } from "../../_test/receiver.ts";
import { LOCALHOST_CERT, LOCALHOST_KEY } from "../../_test/tls.ts";

const body = JSON.stringify({ type: "WEBHOOK_TEST", data: {} });
const headers = { "webhook-id": "msg_1", "webhook-timestamp": "1767225600", "webhook-signature": "v1,abc=" };
const options = (target: string, extra: Partial<SendOptions> = {}): SendOptions => ({
  allowedTargets: new Set([target]),
  timeoutMs: 5_000,
  ...extra,
});

Deno.test("send: a 2xx is a success and the request carries body and headers", async () => {
  await using receiver = startReceiver(() => new Response("thanks", { status: 202 }));
  const result = await sendWebhook({ url: `${receiver.origin}/hooks?x=1`, body, headers }, options(receiver.target));

  assert.equal(result.outcome, "succeeded");
  assert.equal(result.status, 202);
  assert.equal(result.response_body, "thanks");
  assert.equal(result.error, null);
  assert.equal(result.gone, false);
  assert.ok(result.duration_ms >= 0);

  assert.equal(receiver.requests.length, 1);
  const [req] = receiver.requests;
  assert.equal(req.method, "POST");
  assert.equal(req.path, "/hooks?x=1");
  assert.equal(req.body, body);
  assert.equal(req.headers.get("content-type"), "application/json");
  assert.equal(req.headers.get("user-agent"), USER_AGENT);
  for (const [name, value] of Object.entries(headers)) assert.equal(req.headers.get(name), value);
});

Deno.test("send: 204 and 299 are successes with an empty or short body", async () => {
  for (const status of [200, 204, 299]) {
    await using receiver = startReceiver(() => new Response(status === 204 ? null : "", { status }));
    const result = await sendWebhook({ url: receiver.origin, body, headers }, options(receiver.target));
    assert.equal(result.outcome, "succeeded", `${status}`);
    assert.equal(result.response_body, "");
  }
});

Deno.test("send: a non-2xx is a failure that keeps status and body", async () => {
  await using receiver = startReceiver(() => new Response("database is down", { status: 500 }));
  const result = await sendWebhook({ url: receiver.origin, body, headers }, options(receiver.target));
  assert.deepEqual(
    { ...result, duration_ms: 0 },
    {
      outcome: "failed",
      status: 500,
      duration_ms: 0,
      response_body: "database is down",
      error: "HTTP 500",
      retry_after_seconds: null,
      gone: false,
    },
  );
});

Deno.test("send: Retry-After on a failure is parsed", async () => {
  await using receiver = startReceiver(() =>
    new Response("slow down", { status: 429, headers: { "retry-after": "120" } })
  );
  const result = await sendWebhook({ url: receiver.origin, body, headers }, options(receiver.target));
  assert.equal(result.outcome, "failed");
  assert.equal(result.retry_after_seconds, 120);
});

Deno.test("send: 410 Gone is a failure flagged gone", async () => {
  await using receiver = startReceiver(() => new Response("unsubscribed", { status: 410 }));
  const result = await sendWebhook({ url: receiver.origin, body, headers }, options(receiver.target));
  assert.equal(result.outcome, "failed");
  assert.equal(result.gone, true);
});

Deno.test("send: a redirect is a failure and is never followed", async () => {
  await using elsewhere = startReceiver();
  await using receiver = startReceiver(() =>
    new Response(null, { status: 307, headers: { location: `${elsewhere.origin}/stolen` } })
  );
  const allowedTargets = new Set([receiver.target, elsewhere.target]);
  const result = await sendWebhook({ url: receiver.origin, body, headers }, { allowedTargets, timeoutMs: 5_000 });
  assert.equal(result.outcome, "failed");
  assert.equal(result.status, 307);
  assert.equal(result.error, `redirect 307 to ${elsewhere.origin}/stolen not followed`);
  assert.equal(elsewhere.requests.length, 0);
});

Deno.test("send: a receiver that never answers times out", async () => {
  const release = gate();
  await using receiver = startReceiver(async () => {
    await release.opened;
    return new Response("too late");
  });
  try {
    const result = await sendWebhook(
      { url: receiver.origin, body, headers },
      options(receiver.target, { timeoutMs: 200 }),
    );
    assert.equal(result.outcome, "failed");
    assert.equal(result.status, null);
    assert.equal(result.error, "timed out after 200 ms");
    assert.ok(result.duration_ms >= 190 && result.duration_ms < 3_000, `${result.duration_ms} ms`);
  } finally {
    release.open();
  }
});

Deno.test("send: a body trickled past the timeout cannot hold the attempt; the status decides", async () => {
  const stop = gate();
  await using receiver = startReceiver(() => {
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode("partial"));
        await stop.opened;
        controller.close();
      },
    });
    return new Response(stream, { status: 200 });
  });
  try {
    const started = performance.now();
    const result = await sendWebhook(
      { url: receiver.origin, body, headers },
      options(receiver.target, { timeoutMs: 300 }),
    );
    assert.ok(performance.now() - started < 3_000);
    assert.equal(result.outcome, "succeeded");
    assert.equal(result.response_body, "partial");
  } finally {
    stop.open();
  }
});

Deno.test("send: only the first 4096 characters of a huge response are read", async () => {
  let bytesProduced = 0;
  const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
  const hundredMegabytes = 100 * 1024 * 1024;
  await using receiver = startReceiver(() =>
    new Response(
      // Pull-based: bytes are only produced as fast as the client reads them,
      // so bytesProduced measures what the dispatcher actually consumed.
      new ReadableStream<Uint8Array>({
        pull(controller) {
          if (bytesProduced >= hundredMegabytes) return controller.close();
          bytesProduced += chunk.length;
          controller.enqueue(chunk);
        },
      }),
      { status: 500 },
    )
  );
  const result = await sendWebhook({ url: receiver.origin, body, headers }, options(receiver.target));
  assert.equal(result.outcome, "failed");
  assert.equal(result.response_body?.length, MAX_RESPONSE_CHARS);
  assert.ok(bytesProduced < 4 * 1024 * 1024, `read ${bytesProduced} bytes of a 100 MB body`);
});

Deno.test("send: a blocked target gets no request at all", async () => {
  await using receiver = startReceiver();
  const result = await sendWebhook({ url: receiver.origin, body, headers }, {
    allowedTargets: new Set(),
    timeoutMs: 5_000,
  });
  assert.equal(result.outcome, "blocked");
  assert.equal(result.status, null);
  assert.equal(result.response_body, null);
  assert.equal(result.error, "target refused: 127.0.0.1 is loopback");
  assert.equal(receiver.requests.length, 0);
});

Deno.test("send: a host resolving to a private address is blocked, a DNS failure is retried", async () => {
  const blocked = await sendWebhook(
    { url: "https://hooks.example.com/", body, headers },
    { allowedTargets: new Set(), timeoutMs: 5_000, resolve: () => Promise.resolve(["10.0.0.7"]) },
  );
  assert.equal(blocked.outcome, "blocked");
  assert.equal(blocked.error, "target refused: hooks.example.com resolves to 10.0.0.7, which is private (RFC 1918)");

  const dnsDown = await sendWebhook(
    { url: "https://hooks.example.com/", body, headers },
    { allowedTargets: new Set(), timeoutMs: 5_000, resolve: () => Promise.reject(new Error("SERVFAIL")) },
  );
  assert.equal(dnsDown.outcome, "failed");
  assert.equal(dnsDown.error, "target refused: DNS lookup for hooks.example.com failed: SERVFAIL");
});

Deno.test("send: connection refused is a failure with the network error", async () => {
  const port = unusedPort();
  const result = await sendWebhook(
    { url: `http://127.0.0.1:${port}/`, body, headers },
    options(`127.0.0.1:${port}`),
  );
  assert.equal(result.outcome, "failed");
  assert.equal(result.status, null);
  assert.ok(result.error && result.error.length > 0);
});

Deno.test("send: http requests go to the vetted address, not to a second DNS answer", async () => {
  await using receiver = startReceiver();
  // `.invalid` never resolves (RFC 6761): the request can only arrive if fetch
  // used the address the check vetted instead of resolving the name again.
  const url = `http://hooks.invalid:${receiver.port}/pinned`;
  const vetted: TargetVerdict = {
    allowed: true,
    reason: "test",
    addresses: ["127.0.0.1"],
    key: `hooks.invalid:${receiver.port}`,
    transient: false,
  };
  const result = await sendWebhook(
    { url, body, headers },
    { allowedTargets: new Set(), timeoutMs: 5_000, checkTarget: () => Promise.resolve(vetted) },
  );
  assert.equal(result.outcome, "succeeded", result.error ?? "");
  assert.equal(receiver.requests.length, 1);
  assert.equal(receiver.requests[0].path, "/pinned");
  assert.equal(receiver.requests[0].headers.get("host"), `hooks.invalid:${receiver.port}`);
});

Deno.test("send: https keeps TLS (a pinned plain-TCP transport would not) and verifies the certificate", async () => {
  await using receiver = startReceiver(() => new Response("secure"), {
    tls: { cert: LOCALHOST_CERT, key: LOCALHOST_KEY },
  });
  const url = `https://localhost:${receiver.port}/tls`;
  const vetted: TargetVerdict = {
    allowed: true,
    reason: "test",
    addresses: ["127.0.0.1"],
    key: null,
    transient: false,
  };
  const base = { allowedTargets: new Set<string>(), timeoutMs: 5_000, checkTarget: () => Promise.resolve(vetted) };

  const trusted = await sendWebhook({ url, body, headers }, { ...base, caCerts: [LOCALHOST_CERT] });
  assert.equal(trusted.outcome, "succeeded", trusted.error ?? "");
  assert.equal(trusted.response_body, "secure");
  assert.equal(receiver.requests[0].body, body);

  const untrusted = await sendWebhook({ url, body, headers }, base);
  assert.equal(untrusted.outcome, "failed");
  assert.equal(untrusted.status, null);
  assert.equal(receiver.requests.length, 1, "no request reaches a server with an untrusted certificate");
});

Deno.test("send: the timeout also covers DNS resolution", async () => {
  let aborted = false;
  const hangingResolver = (_host: string, signal?: AbortSignal) =>
    new Promise<string[]>((_, reject) => {
      signal?.addEventListener("abort", () => {
        aborted = true;
        reject(signal.reason);
      });
    });
  const result = await sendWebhook(
    { url: "https://hooks.example.com/", body, headers },
    { allowedTargets: new Set(), timeoutMs: 150, resolve: hangingResolver },
  );
  assert.equal(aborted, true);
  assert.equal(result.outcome, "failed");
  assert.equal(result.error, "timed out after 150 ms");
});

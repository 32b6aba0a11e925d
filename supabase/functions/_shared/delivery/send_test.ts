import assert from "node:assert/strict";
import {
  type HttpClientFactory,
  MAX_RESPONSE_CHARS,
  networkError,
  type SendOptions,
  sendWebhook,
  USER_AGENT,
} from "./send.ts";
import { gate, startReceiver, unusedPort } from "../../_test/receiver.ts";
import { LOCALHOST_CERT, LOCALHOST_KEY } from "../../_test/tls.ts";
import { CHILD_DENO_FLAGS } from "../../_test/runtime.ts";

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
  // Should the timeout not cut the attempt, the receiver answers after 10 s, and the
  // outcome says so instead of the test hanging.
  const fallback = setTimeout(release.open, 10_000);
  try {
    const result = await sendWebhook(
      { url: receiver.origin, body, headers },
      options(receiver.target, { timeoutMs: 200 }),
    );
    assert.equal(result.outcome, "failed");
    assert.equal(result.status, null);
    assert.equal(result.error, "timed out after 200 ms");
    assert.ok(result.duration_ms >= 190, `${result.duration_ms} ms`);
  } finally {
    clearTimeout(fallback);
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
  // Should the timeout not cover the body, the stream ends after 10 s, and the flag says so
  // instead of the test hanging.
  let cutByTimeout = true;
  const fallback = setTimeout(() => {
    cutByTimeout = false;
    stop.open();
  }, 10_000);
  try {
    const result = await sendWebhook(
      { url: receiver.origin, body, headers },
      options(receiver.target, { timeoutMs: 300 }),
    );
    assert.equal(cutByTimeout, true, "the attempt waited for the whole body");
    assert.equal(result.outcome, "succeeded");
    assert.equal(result.response_body, "partial");
  } finally {
    clearTimeout(fallback);
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

/** A raw TCP receiver: answers every request with `head`, then hands the connection to `then`. */
function rawReceiver(head: string, then: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        await conn.read(new Uint8Array(64 * 1024));
        await conn.write(new TextEncoder().encode(head));
        await then(conn);
      })().catch(() => {}).finally(() => tryClose(conn));
    }
  })();
  const { port } = listener.addr as Deno.NetAddr;
  return { url: `http://127.0.0.1:${port}/`, target: `127.0.0.1:${port}`, close: () => listener.close() };
}

Deno.test("send: a body declared larger than the whole-read limit is read only up to the cap", async () => {
  // Small declared bodies are read whole (cheaper). This one declares 900,000 bytes, sends
  // 32 KiB and stalls: read whole, the attempt would wait out its timeout and keep nothing.
  const stop = gate();
  const receiver = rawReceiver("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 900000\r\n\r\n", async (conn) => {
    await conn.write(new TextEncoder().encode("y".repeat(32 * 1024)));
    await stop.opened;
  });
  const started = performance.now();
  try {
    const result = await sendWebhook(
      { url: receiver.url, body, headers },
      options(receiver.target, { timeoutMs: 5_000 }),
    );
    assert.ok(performance.now() - started < 2_000, "the attempt waited for the whole declared body");
    assert.deepEqual([result.outcome, result.status, result.response_body?.length], [
      "failed",
      500,
      MAX_RESPONSE_CHARS,
    ]);
  } finally {
    stop.open();
    receiver.close();
  }
});

Deno.test("send: a small declared body that never completes cannot hold the attempt past the timeout", async () => {
  const stop = gate();
  const receiver = rawReceiver("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", () => stop.opened);
  const started = performance.now();
  try {
    const result = await sendWebhook(
      { url: receiver.url, body, headers },
      options(receiver.target, { timeoutMs: 300 }),
    );
    assert.ok(performance.now() - started < 3_000, "the attempt waited for the rest of the body");
    // The status decided; the unfinished body is not kept.
    assert.deepEqual([result.outcome, result.status, result.response_body], ["succeeded", 200, ""]);
  } finally {
    stop.open();
    receiver.close();
  }
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

Deno.test("send: a request that gets no response records what happened, not 'fetch failed'", async () => {
  // Real receivers that fail in each way Deno's fetch reports under one name.
  const listeners: Deno.Listener[] = [];
  /** A raw TCP server: `serve` gets each connection. */
  const raw = (serve: (conn: Deno.Conn) => Promise<void>) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    listeners.push(listener);
    (async () => {
      for await (const conn of listener) serve(conn).catch(() => {}).finally(() => tryClose(conn));
    })();
    return listener.addr.port;
  };
  const answer = (bytes: string) => async (conn: Deno.Conn) => {
    await conn.read(new Uint8Array(4096));
    await conn.write(new TextEncoder().encode(bytes));
  };
  await using plain = startReceiver();
  const cases: [string, string, string][] = [
    [
      "a closed port",
      `http://127.0.0.1:${unusedPort()}/`,
      "connection failed: tcp connect error: Connection refused (os error 111)",
    ],
    [
      "a server that hangs up",
      `http://127.0.0.1:${raw((conn) => conn.read(new Uint8Array(1)).then(() => {}))}/`,
      "request failed: connection closed before message completed",
    ],
    [
      "invalid header bytes",
      `http://127.0.0.1:${raw(answer("HTTP/1.1 200 OK\r\nX-Bad: a\u0001b\r\nContent-Length: 0\r\n\r\n"))}/`,
      "request failed: invalid HTTP header parsed",
    ],
    [
      "not HTTP at all",
      `http://127.0.0.1:${raw(answer("SSH-2.0-OpenSSH_9.2\r\n"))}/`,
      "request failed: invalid HTTP version parsed",
    ],
    [
      "https to a plain port",
      `https://127.0.0.1:${plain.port}/`,
      "TLS handshake failed: received corrupt message of type InvalidContentType",
    ],
  ];
  try {
    for (const [what, url, error] of cases) {
      const result = await sendWebhook({ url, body, headers }, options(new URL(url).host));
      assert.deepEqual([result.outcome, result.status, result.error], ["failed", null, error], what);
    }
  } finally {
    for (const listener of listeners) listener.close();
  }
});

Deno.test("send: networkError keeps the cause and never the dispatcher's own address", () => {
  const cause = new Error(
    "error sending request from 10.1.2.3:51854 for https://hooks.example.com/ (93.184.215.14:443): " +
      "client error (Connect): invalid peer certificate: UnknownIssuer",
  );
  assert.equal(
    networkError(new TypeError("fetch failed", { cause }), "https://hooks.example.com/"),
    "TLS handshake failed: invalid peer certificate: UnknownIssuer",
  );
  // A description in another shape is kept whole, less the local address.
  const other = new TypeError("fetch failed", {
    cause: new Error("error sending request from 10.1.2.3:5 for http://a.example/ (1.2.3.4:80): something new"),
  });
  assert.equal(
    networkError(other, "http://a.example/"),
    "error sending request for http://a.example/ (1.2.3.4:80): something new",
  );
  assert.equal(networkError(new TypeError("fetch failed"), "http://a.example/"), "fetch failed");
  assert.equal(networkError("boom", "http://a.example/"), "boom");
});

function tryClose(conn: Deno.Conn) {
  try {
    conn.close();
  } catch { /* closed already */ }
}

Deno.test("send: http requests go to the vetted address, not to a second DNS answer; https ones keep the name", async () => {
  await using receiver = startReceiver();
  // What the SSRF check resolved `hooks.invalid` to: a public address. `.invalid` never
  // resolves (RFC 6761), so the request can only arrive if fetch used the vetted address
  // instead of resolving the name again. No public address serves this test, so the
  // client factory keeps the connection the dispatcher asked for and swaps that one
  // address for the local receiver's; the request, its Host header and the transport
  // are the real ones.
  const vetted = "93.184.215.14";
  const requested: Deno.CreateHttpClientOptions[] = [];
  const createHttpClient: HttpClientFactory = (clientOptions) => {
    requested.push(clientOptions);
    return Deno.createHttpClient(JSON.parse(JSON.stringify(clientOptions).replaceAll(vetted, "127.0.0.1")));
  };
  const resolve = (host: string) => Promise.resolve(host === "hooks.invalid" ? [vetted] : []);
  const pinned = { allowedTargets: new Set<string>(), timeoutMs: 5_000, resolve, createHttpClient };

  const result = await sendWebhook({ url: `http://hooks.invalid:${receiver.port}/pinned`, body, headers }, pinned);
  assert.equal(result.outcome, "succeeded", result.error ?? "");
  assert.equal(requested.length, 1);
  assert.match(
    JSON.stringify(requested[0]),
    new RegExp(vetted.replaceAll(".", "\\.")),
    "connects to the vetted address",
  );
  assert.equal(receiver.requests.length, 1);
  assert.equal(receiver.requests[0].path, "/pinned");
  assert.equal(receiver.requests[0].headers.get("host"), `hooks.invalid:${receiver.port}`);

  // https: a proxy at the address would be asked to CONNECT, which a receiver does not
  // do; the name stays what fetch connects to (and so fails to resolve here).
  const secure = await sendWebhook({ url: `https://hooks.invalid:${receiver.port}/`, body, headers }, pinned);
  assert.equal(secure.outcome, "failed");
  assert.equal(requested.length, 1, "no pinned client for https");
  assert.equal(receiver.requests.length, 1);
});

Deno.test("send: a connection that cannot be pinned to the vetted address sends nothing and says why", async () => {
  // An unpinned fetch would resolve `hooks.invalid` itself (and fail with a DNS error): the
  // error says whether anything was attempted.
  const resolve = () => Promise.resolve(["93.184.215.14"]);
  const url = "http://hooks.invalid:8080/";
  // What Deno 2.1 answers to the `transport: "tcp"` form newer Denos accept.
  const createHttpClient: HttpClientFactory = () => {
    throw new URIError("relative URL without a base");
  };
  const result = await sendWebhook(
    { url, body, headers },
    { allowedTargets: new Set(), timeoutMs: 5_000, resolve, createHttpClient },
  );
  assert.equal(result.outcome, "failed");
  assert.equal(result.status, null);
  assert.equal(
    result.error,
    "not sent: the connection could not be pinned to the vetted address 93.184.215.14 (relative URL without a base)",
  );
});

Deno.test("send: a pinning failure is logged once per reason the runtime gives, not once per address", async () => {
  let address = 0;
  const resolve = () => Promise.resolve([`93.184.215.${++address}`]);
  const createHttpClient: HttpClientFactory = () => {
    throw new TypeError("pinning is not supported here (a reason seen once)");
  };
  const logged: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => logged.push(args.join(" "));
  try {
    for (let i = 0; i < 5; i++) {
      const result = await sendWebhook(
        { url: "http://hooks.invalid:8080/", body, headers },
        { allowedTargets: new Set(), timeoutMs: 5_000, resolve, createHttpClient },
      );
      assert.match(result.error ?? "", new RegExp(`vetted address 93\\.184\\.215\\.${i + 1} `));
    }
  } finally {
    console.error = consoleError;
  }
  assert.equal(logged.filter((l) => String(l).includes("a reason seen once")).length, 1, JSON.stringify(logged));
});

Deno.test("send: https verifies the certificate against the runtime's trust store; a private CA comes from --cert", async () => {
  await using receiver = startReceiver(() => new Response("secure"), {
    tls: { cert: LOCALHOST_CERT, key: LOCALHOST_KEY },
  });
  const url = `https://127.0.0.1:${receiver.port}/tls`;

  const untrusted = await sendWebhook({ url, body, headers }, options(receiver.target));
  assert.equal(untrusted.outcome, "failed");
  assert.equal(untrusted.status, null);
  assert.equal(receiver.requests.length, 0, "no request reaches a server with an untrusted certificate");

  // The same send in a Deno started with the receiver's CA (--cert, or DENO_CERT): how an
  // operator trusts a private CA, with nothing in the code.
  const ca = await Deno.makeTempFile({ suffix: ".pem" });
  try {
    await Deno.writeTextFile(ca, LOCALHOST_CERT);
    const script = `
      import { sendWebhook } from ${JSON.stringify(new URL("./send.ts", import.meta.url).href)};
      const result = await sendWebhook(
        { url: ${JSON.stringify(url)}, body: ${JSON.stringify(body)}, headers: ${JSON.stringify(headers)} },
        { allowedTargets: new Set([${JSON.stringify(receiver.target)}]), timeoutMs: 5000 },
      );
      console.log(JSON.stringify(result));`;
    const child = await new Deno.Command(Deno.execPath(), {
      args: ["eval", ...CHILD_DENO_FLAGS, `--cert=${ca}`, script],
      cwd: new URL("../..", import.meta.url),
      env: { NO_COLOR: "1" },
    }).output();
    const output = new TextDecoder().decode(child.stdout) + new TextDecoder().decode(child.stderr);
    assert.equal(child.code, 0, output);
    const trusted = JSON.parse(new TextDecoder().decode(child.stdout));
    assert.equal(trusted.outcome, "succeeded", output);
    assert.equal(trusted.response_body, "secure");
    assert.equal(receiver.requests.length, 1);
    assert.equal(receiver.requests[0].body, body);
  } finally {
    await Deno.remove(ca);
  }
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

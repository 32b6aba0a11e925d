// End to end: an attempt that gets no response says why in the attempt log the endpoint's
// admin reads (refused, hung up on, not HTTP, TLS to a plain port), never just "fetch
// failed", and never the dispatcher's own address.
import assert from "node:assert/strict";
import { attemptsOf, createProcess, deliveriesOf, e2eTest, reviseProcess, waitFor } from "../_test/e2e.ts";
import { unusedPort } from "../_test/receiver.ts";

e2eTest(
  "an attempt without a response records its cause: a closed port, a hang-up, bad bytes, https to plain http",
  async (t) => {
    const listeners: Deno.Listener[] = [];
    /** A raw TCP server: `serve` gets each connection, which is closed after it. */
    const raw = (serve: (conn: Deno.Conn) => Promise<unknown>) => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      listeners.push(listener);
      (async () => {
        for await (const conn of listener) {
          serve(conn).catch(() => {}).finally(() => {
            try {
              conn.close();
            } catch { /* closed already */ }
          });
        }
      })().catch(() => {});
      return listener.addr.port;
    };
    const plain = t.receiver();
    const endpoints: [string, string, string][] = [
      [
        "closed port",
        `http://127.0.0.1:${unusedPort()}/hook`,
        "connection failed: tcp connect error: Connection refused",
      ],
      // Reads one byte and closes with the rest unread: the kernel resets the connection.
      [
        "hang-up",
        `http://127.0.0.1:${raw((conn) => conn.read(new Uint8Array(1)))}/hook`,
        "request failed: connection closed before message completed",
      ],
      [
        "bad bytes",
        `http://127.0.0.1:${
          raw(async (conn) => {
            await conn.read(new Uint8Array(65536));
            await conn.write(
              new TextEncoder().encode("HTTP/1.1 200 OK\r\nX-Bad: a\u0001b\r\nContent-Length: 0\r\n\r\n"),
            );
          })
        }/hook`,
        "request failed: invalid HTTP header parsed",
      ],
      ["https to plain http", `https://127.0.0.1:${plain.port}/hook`, "TLS handshake failed: received corrupt message"],
    ];
    try {
      const company = await t.company();
      const hooks = [];
      for (const [, url] of endpoints) hooks.push(await t.webhook(company, url));
      const processId = await createProcess(t.sql, company, "Wave soldering");
      await reviseProcess(t.sql, processId, "Wave soldering, lead-free");

      await t.dispatcher({ allowedTargets: endpoints.map(([, url]) => new URL(url).host) });
      for (const [i, [what, , cause]] of endpoints.entries()) {
        const [delivery] = await deliveriesOf(t.sql, hooks[i]);
        const [first] = await waitFor(`the first attempt to the ${what}`, async () => {
          const attempts = await attemptsOf(t.sql, delivery.id);
          return attempts.length > 0 ? attempts : null;
        });
        assert.equal(first.outcome, "failed", what);
        assert.equal(first.status, null, what);
        assert.ok(first.error?.startsWith(cause), `${what}: ${first.error}`);
        assert.doesNotMatch(first.error ?? "", /fetch failed| from \d/, what);
      }
      assert.equal(plain.requests.length, 0);
    } finally {
      for (const listener of listeners) listener.close();
    }
  },
);

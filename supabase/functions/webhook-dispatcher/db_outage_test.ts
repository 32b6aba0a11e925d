// Database outages the worker must ride out, through a TCP proxy between the dispatcher
// and the test database (so the outage is exact and needs no server restart): a
// connection dropped while postgres.js sets it up must not kill the process, and the
// worker resumes on its own once the database answers again, losing nothing. How soon
// it resumes is the reconnect backoff's business (capped at a second, pg_store_test.ts),
// not a stopwatch's: a bound on wall time flakes on a loaded machine.
import assert from "node:assert/strict";
import {
  createProcess,
  e2eTest,
  enqueueEvents,
  requireDbUrl,
  reviseProcess,
  settledDeliveries,
  sleep,
} from "../_test/e2e.ts";

class PgProxy {
  port = 0;
  #listener: Deno.Listener | null = null;
  #conns = new Set<Deno.Conn>();
  /** Drop the next connection whose client sends postgres.js's array-types query, then refuse for this long. */
  killTypesQueryThenRefuseMs = 0;

  constructor(readonly target: { hostname: string; port: number }) {
    this.#listen();
  }

  #listen() {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    const listener = this.#listener;
    (async () => {
      try {
        for await (const client of listener) this.#pipe(client);
      } catch { /* closed */ }
    })();
  }

  async #pipe(client: Deno.Conn) {
    let server: Deno.Conn;
    try {
      server = await Deno.connect(this.target);
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client).add(server);
    const close = () => {
      for (const c of [client, server]) {
        try {
          c.close();
        } catch { /* already */ }
        this.#conns.delete(c);
      }
    };
    (async () => {
      try {
        await server.readable.pipeTo(client.writable);
      } catch { /* closed */ }
      close();
    })();
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await client.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        if (this.killTypesQueryThenRefuseMs > 0 && new TextDecoder().decode(chunk).includes("typarray")) {
          const ms = this.killTypesQueryThenRefuseMs;
          this.killTypesQueryThenRefuseMs = 0;
          await this.refuse(ms);
          return;
        }
        await server.write(chunk);
      }
    } catch { /* closed */ }
    close();
  }

  /** Drops every connection and refuses new ones for `ms`, then accepts again on the same port. */
  async refuse(ms: number) {
    this.#listener?.close();
    this.#listener = null;
    for (const c of [...this.#conns]) {
      try {
        c.close();
      } catch { /* already */ }
    }
    this.#conns.clear();
    await sleep(ms);
    this.#listen();
  }

  close() {
    this.#listener?.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already */ }
    }
  }
}

function proxyFor(): { proxy: PgProxy; url: string } {
  const url = new URL(requireDbUrl());
  const proxy = new PgProxy({ hostname: url.hostname, port: Number(url.port || 5432) });
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  return { proxy, url: url.toString() };
}

e2eTest(
  "a pool connection lost while it is set up (postgres.js array-types query) does not kill the worker",
  async (t) => {
    const { proxy, url } = proxyFor();
    try {
      const receiver = t.receiver();
      const company = await t.company();
      const hook = await t.webhook(company, `${receiver.origin}/hook`);
      const processId = await createProcess(t.sql, company, "Reflow");
      await reviseProcess(t.sql, processId, "Reflow, profile B");

      // The worker's first pool connection starts up, then is dropped while it fetches
      // array types; its reconnect is refused for 3 s (a server restarting).
      proxy.killTypesQueryThenRefuseMs = 3_000;
      const worker = await t.dispatcher({ allowedTargets: [receiver.target], env: { SUPABASE_DB_URL: url } });
      let exited = false;
      worker.exited.then(() => (exited = true));

      const [delivery] = await settledDeliveries(t.sql, hook, { timeoutMs: 30_000 }).catch((e) => {
        throw new Error(`${e.message}; worker exited: ${exited}\n${worker.output()}`);
      });
      assert.equal(delivery.state, "succeeded");
      assert.equal(exited, false, `the worker died:\n${worker.output()}`);
    } finally {
      proxy.close();
    }
  },
);

e2eTest("after a 6 s database outage the worker resumes on its own and loses nothing", async (t) => {
  const { proxy, url } = proxyFor();
  try {
    const receiver = t.receiver();
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    const worker = await t.dispatcher({ allowedTargets: [receiver.target], env: { SUPABASE_DB_URL: url } });
    let exited = false;
    worker.exited.then(() => (exited = true));
    await enqueueEvents(t.sql, company, 1);
    // Delivered and recorded: the outage must not catch its result in flight.
    await settledDeliveries(t.sql, hook);

    await proxy.refuse(6_000);
    // The database is reachable again; a new event commits (and NOTIFYs).
    await enqueueEvents(t.sql, company, 1);
    const deliveries = await settledDeliveries(t.sql, hook, { expected: 2, timeoutMs: 30_000 }).catch((e) => {
      throw new Error(`${e.message}; worker exited: ${exited}\n${worker.output()}`);
    });
    assert.equal(exited, false, `the worker died:\n${worker.output()}`);
    assert.deepEqual(deliveries.map((d) => [d.state, d.attempt_count]), [["succeeded", 1], ["succeeded", 1]]);
    assert.equal(receiver.requests.length, 2, "each delivered once");
    assert.deepEqual(new Set(receiver.webhookIds()), new Set(deliveries.map((d) => d.id)));
  } finally {
    proxy.close();
  }
});

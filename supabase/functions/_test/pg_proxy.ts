// A TCP proxy between a dispatcher and the test database, so that a test can make an
// outage exact (drop every connection, refuse new ones for a while) without restarting the
// server. Used by webhook-dispatcher/db_outage_test.ts and http_outage_test.ts.
import { requireDbUrl, sleep } from "./e2e.ts";

export class PgProxy {
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

export function proxyFor(): { proxy: PgProxy; url: string } {
  const url = new URL(requireDbUrl());
  const proxy = new PgProxy({ hostname: url.hostname, port: Number(url.port || 5432) });
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  return { proxy, url: url.toString() };
}

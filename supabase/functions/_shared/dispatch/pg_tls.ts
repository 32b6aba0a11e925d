// TLS to the database, chosen per connection string (databaseTls) and, for remote hosts,
// done by the dispatcher itself with Deno.startTls (verifiedTlsSocket), handing postgres.js
// a socket that is already encrypted.
//
// Why not postgres.js's own TLS (`ssl: 'require'`): it upgrades its node:net socket with
// node:tls after the SSLRequest exchange, which Deno's node compatibility could not do
// before Deno 2.5 (denoland/deno#28526): on Deno 2.1.4, the level hosted Supabase runs,
// the connection never comes up (CONNECT_TIMEOUT). pg_tls_test.ts runs this path on both.
// Deno.startTls works on every Deno and always verifies: the chain against the CA given
// (Supabase's, for its databases) or the runtime's trust store, and the host name.

import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";

/**
 * How a connection string gets TLS:
 * - `url`: the URL says (`sslmode`, `ssl` or `sslrootcert`), and postgres.js does it;
 * - `plain`: a local host (localhost, 127.0.0.0/8, ::1, a Unix socket);
 * - `verified`: any other host, through verifiedTlsSocket.
 */
export function databaseTls(dbUrl: string): "url" | "plain" | "verified" {
  const { hosts, query } = splitUrl(dbUrl);
  // Spelled as postgres.js reads them (lower case): anything else it would ignore.
  if (/(^|&)(sslmode|ssl|sslrootcert)=/.test(query)) return "url";
  return hosts.every(isLocalHost) ? "plain" : "verified";
}

/**
 * What in a connection string's TLS settings postgres.js would not honour, said with the
 * fix; null when nothing. It fails closed: a setting that would let a remote connection
 * go unencrypted, or that it would drop, is refused rather than guessed at.
 */
export function databaseTlsProblem(name: string, dbUrl: string): string | null {
  const { hosts, query } = splitUrl(dbUrl);
  const params = new URLSearchParams(query);
  const rootCert = params.get("sslrootcert");
  if (rootCert !== null && rootCert !== "system") {
    return `${name}: sslrootcert=${rootCert} is not supported (only sslrootcert=system); ` +
      `put the CA certificate's PEM in WEBHOOK_DB_CA_CERT and drop sslrootcert from the URL`;
  }
  const mode = params.get("sslmode");
  if ((mode === "prefer" || mode === "allow") && !hosts.every(isLocalHost)) {
    return `${name}: sslmode=${mode} may connect to a remote host without TLS; ` +
      `use sslmode=verify-full (or leave sslmode out: the dispatcher then verifies TLS itself)`;
  }
  if (/(^|&)(sslmode|ssl|sslrootcert)=/i.test(query) && !/(^|&)(sslmode|ssl|sslrootcert)=/.test(query)) {
    return `${name}: write sslmode, ssl and sslrootcert in lower case (postgres.js ignores other spellings)`;
  }
  return null;
}

function splitUrl(dbUrl: string): { hosts: string[]; query: string } {
  const [, hostPart = "", query = ""] =
    /^postgres(?:ql)?:\/\/(?:[^@/?#]*@)?([^/?#]*)[^?#]*(?:\?([^#]*))?/.exec(dbUrl) ?? [];
  const hosts = hostPart.split(",").map((h) => h.replace(/:\d*$/, "").replace(/^\[(.*)\]$/, "$1").toLowerCase());
  return { hosts, query };
}

function isLocalHost(h: string): boolean {
  return h === "" || h === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::1";
}

/** Postgres' SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]);

/**
 * A TCP connection to `host:port` that asked Postgres for TLS and completed a verified
 * handshake, as the node-style socket postgres.js expects from its `socket` option.
 * Rejects, saying what to fix, when the server offers no TLS or its certificate does not
 * verify.
 */
export async function verifiedTlsSocket(
  host: string,
  port: number,
  { caCert, timeoutMs }: { caCert?: string; timeoutMs: number },
): Promise<Duplex> {
  const where = `${host}:${port}`;
  const attempt = (async () => {
    const conn = await Deno.connect({ hostname: host, port });
    let tls: Deno.TlsConn;
    try {
      for (let written = 0; written < SSL_REQUEST.length;) written += await conn.write(SSL_REQUEST.subarray(written));
      const answer = new Uint8Array(1);
      if ((await conn.read(answer)) !== 1 || answer[0] !== 0x53 /* S */) {
        throw new Error(`the database at ${where} does not offer TLS (choose sslmode in the connection string)`);
      }
      tls = await Deno.startTls(conn, { hostname: host, ...(caCert ? { caCerts: [caCert] } : {}) });
    } catch (error) {
      conn.close();
      throw error;
    }
    try {
      await tls.handshake();
    } catch (error) {
      tls.close();
      const fix = caCert
        ? "WEBHOOK_DB_CA_CERT is not the CA that signed its certificate"
        : "set WEBHOOK_DB_CA_CERT to the CA that signed its certificate (Supabase: Database Settings > SSL Configuration)";
      throw new Error(`TLS to the database at ${where} failed: ${errorMessage(error)}; ${fix}`);
    }
    return nodeSocket(tls, host, port);
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no TLS connection to the database at ${where} within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([attempt, deadline]);
  } catch (error) {
    // Late success after the deadline: nobody will use that connection.
    attempt.then((socket) => socket.destroy(), () => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The node:net-like face postgres.js uses: data/close/error/drain events, write, end,
 * destroy, pause/resume, readyState, host and port. */
function nodeSocket(conn: Deno.TlsConn, host: string, port: number): Duplex {
  const reader = conn.readable.getReader();
  const writer = conn.writable.getWriter();
  const socket = new Duplex({
    // The server closing its side closes ours, so 'close' follows.
    allowHalfOpen: false,
    read() {
      reader.read().then(
        ({ done, value }) => this.push(done ? null : Buffer.from(value.buffer, value.byteOffset, value.byteLength)),
        (error) => this.destroy(error),
      );
    },
    write(chunk: Uint8Array, _encoding, callback) {
      writer.write(chunk).then(() => callback(), callback);
    },
    final(callback) {
      writer.close().then(() => callback(), callback);
    },
    destroy(error, callback) {
      reader.cancel().catch(() => {});
      try {
        conn.close();
      } catch { /* already closed */ }
      callback(error);
    },
  });
  Object.defineProperty(socket, "readyState", {
    get: () => socket.destroyed ? "closed" : socket.writable && socket.readable ? "open" : "closed",
  });
  return Object.assign(socket, { host, port });
}

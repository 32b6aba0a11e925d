// TLS to the database: the choice per connection string, then connectDatabase against a
// real PostgreSQL serving TLS: a throwaway cluster of this test's own (_test/cluster.ts)
// with `ssl = on` and a certificate from a CA made here by openssl, listening on loopback
// and on this machine's own non-loopback address (the stand-in for a remote host such as
// db.<ref>.supabase.co). What pg_stat_ssl says about the connection's own backend is the
// verdict. npm test runs it on Deno 2.1 too, where postgres.js's own TLS cannot start.
import assert from "node:assert/strict";
import type postgres from "postgres";
import { connectDatabase } from "./pg_store.ts";
import { databaseTls, databaseTlsProblem } from "./pg_tls.ts";
import { createCluster, run } from "../../_test/cluster.ts";
import { LOCALHOST_CERT } from "../../_test/tls.ts";

/** An IPv4 address of this machine that is not loopback: a "remote" host that is reachable here. */
function ownAddress(): string {
  const address = Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."))?.address;
  if (!address) throw new Error("this machine has no non-loopback IPv4 address to serve TLS on for this test");
  return address;
}

/** A CA, and a server certificate it signed for `address` and localhost. */
async function makeCertificates(address: string) {
  const dir = await Deno.makeTempDir({ prefix: "webhooks-pg-tls-" });
  const openssl = (...args: string[]) => run("openssl", args);
  try {
    await openssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=webhooks test CA",
      "-keyout",
      `${dir}/ca.key`,
      "-out",
      `${dir}/ca.crt`,
    );
    await openssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj",
      "/CN=db.test",
      "-keyout",
      `${dir}/server.key`,
      "-out",
      `${dir}/server.csr`,
    );
    await Deno.writeTextFile(`${dir}/san.ext`, `subjectAltName = IP:${address}, DNS:localhost\n`);
    await openssl(
      "x509",
      "-req",
      "-in",
      `${dir}/server.csr`,
      "-CA",
      `${dir}/ca.crt`,
      "-CAkey",
      `${dir}/ca.key`,
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      `${dir}/san.ext`,
      "-out",
      `${dir}/server.crt`,
    );
    const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
    return { ca: await read("ca.crt"), cert: await read("server.crt"), key: await read("server.key") };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether this connection's own backend speaks TLS (after a round trip bigger than one TLS record). */
async function encrypted(sql: postgres.Sql): Promise<boolean> {
  try {
    const [big] = await sql<{ text: string }[]>`select repeat('x', ${200_000}::int) as text`;
    assert.equal(big.text.length, 200_000);
    const [row] = await sql<{ ssl: boolean }[]>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`;
    return row.ssl;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

Deno.test("databaseTls: the URL's sslmode wins; local hosts are plain; any other host gets verified TLS", () => {
  const cases: [string, ReturnType<typeof databaseTls>][] = [
    ["postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres", "verified"],
    ["postgresql://postgres.abcdefgh:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres", "verified"],
    ["postgres://u:p@10.0.0.5/db", "verified"],
    ["postgres://u:p@[2001:db8::5]:5432/db", "verified"],
    ["postgres://u:p@127.0.0.1:5432,db.example.com:5432/db", "verified"],
    ["postgresql://postgres:postgres@127.0.0.1:54322/postgres", "plain"],
    ["postgres://u@127.8.9.10/db", "plain"],
    ["postgres://u@LOCALHOST:5432/db", "plain"],
    ["postgres://u@[::1]:5432/db", "plain"],
    ["postgres://u@/db", "plain"],
    ["postgres://u@127.0.0.1:1,localhost:2/db", "plain"],
    ["postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres?sslmode=disable", "url"],
    ["postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres?application_name=x&sslmode=require", "url"],
    ["postgres://u@127.0.0.1/db?sslmode=verify-full", "url"],
    ["postgres://u@127.0.0.1/db?ssl=true", "url"],
    ["postgres://u@db.example.com/db?sslrootcert=system", "url"],
    // postgres.js reads only lower case: another spelling is not the URL deciding.
    ["postgres://u@db.example.com/db?SSLMODE=disable", "verified"],
  ];
  for (const [url, expected] of cases) assert.equal(databaseTls(url), expected, url);
});

Deno.test("databaseTlsProblem: what postgres.js would drop, or would let go unencrypted, is refused with the fix", () => {
  const remote = "postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres";
  assert.match(
    databaseTlsProblem("SUPABASE_DB_URL", `${remote}?sslmode=verify-full&sslrootcert=prod-ca.crt`)!,
    /^SUPABASE_DB_URL: sslrootcert=prod-ca.crt is not supported .*WEBHOOK_DB_CA_CERT/,
  );
  assert.match(
    databaseTlsProblem("WEBHOOK_DB_URL", `${remote}?sslmode=prefer`)!,
    /^WEBHOOK_DB_URL: sslmode=prefer may connect to a remote host without TLS; use sslmode=verify-full/,
  );
  assert.match(databaseTlsProblem("SUPABASE_DB_URL", `${remote}?sslmode=allow`)!, /sslmode=allow may connect/);
  assert.match(databaseTlsProblem("SUPABASE_DB_URL", `${remote}?SSLMODE=require`)!, /in lower case/);
  for (
    const fine of [
      remote,
      `${remote}?sslmode=verify-full`,
      `${remote}?sslrootcert=system`,
      `${remote}?sslmode=disable`,
      "postgres://u@127.0.0.1:5432/db?sslmode=prefer",
    ]
  ) {
    assert.equal(databaseTlsProblem("SUPABASE_DB_URL", fine), null, fine);
  }
});

Deno.test({
  name: "connectDatabase: a remote host gets TLS verified against WEBHOOK_DB_CA_CERT, a local one plain, sslmode wins",
  // postgres.js closes its sockets after sql.end() resolves.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const address = ownAddress();
    const { ca, cert, key } = await makeCertificates(address);
    let failed = true;
    const cluster = await createCluster({
      prepare: false,
      listen: ["127.0.0.1", address],
      files: { "server.crt": cert, "server.key": key },
      conf: ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"],
    });
    try {
      const remote = `postgresql://postgres:postgres@${address}:${cluster.port}/postgres`;
      const local = `postgresql://postgres:postgres@127.0.0.1:${cluster.port}/postgres`;

      assert.equal(
        await encrypted(connectDatabase(remote, 1, { caCert: ca })),
        true,
        "a remote host, its CA: verified",
      );
      // Worker mode LISTENs over the same kind of connection.
      const listening = connectDatabase(remote, 2, { caCert: ca });
      try {
        const heard = Promise.withResolvers<string>();
        await listening.listen("tls_test", heard.resolve);
        await listening`select pg_notify('tls_test', 'over TLS')`;
        assert.equal(await heard.promise, "over TLS");
      } finally {
        await listening.end({ timeout: 5 });
      }
      assert.equal(await encrypted(connectDatabase(local, 1)), false, "a local host: plain");
      assert.equal(await encrypted(connectDatabase(`${remote}?sslmode=disable`, 1)), false, "sslmode=disable wins");

      // A certificate that does not verify: no connection, and the error says what to set.
      for (
        const [what, caCert, fix] of [
          ["no CA (the runtime's trust store does not know it)", undefined, /set WEBHOOK_DB_CA_CERT to the CA/],
          ["another CA", LOCALHOST_CERT, /WEBHOOK_DB_CA_CERT is not the CA that signed its certificate/],
        ] as const
      ) {
        const sql = connectDatabase(remote, 1, { caCert });
        await assert.rejects(sql`select 1`, (e: Error) => {
          assert.match(
            e.message,
            new RegExp(`^TLS to the database at ${address.replaceAll(".", "\\.")}:\\d+ failed: `),
          );
          assert.match(e.message, fix, what);
          return true;
        });
        await sql.end({ timeout: 1 });
      }
      failed = false;
    } finally {
      await cluster.close(failed);
    }
  },
});

// A throwaway PostgreSQL cluster of a test's own, for tests that must do to a server what
// they cannot do to DB_URL's: restart it (postgres_restart_test.ts), serve TLS
// (pg_tls_test.ts). In a temp dir on a free port, deleted afterwards.
// Server binaries: $PG_BINDIR or /usr/lib/postgresql/15/bin; as root they run as the
// `postgres` OS user (initdb and postgres refuse root).
import type { E2EDatabase } from "./e2e.ts";

const ROOT = decodeURIComponent(new URL("../../../", import.meta.url).pathname);
const PG_BIN = Deno.env.get("PG_BINDIR") ?? "/usr/lib/postgresql/15/bin";

export interface Cluster extends E2EDatabase {
  /** `postgresql://postgres:postgres@127.0.0.1:<port>/postgres` (trust auth). */
  url: string;
  port: number;
  /** pg_ctl stop: `fast` rolls back open sessions; `immediate` is a crash (recovery at start). */
  stop(mode: "fast" | "immediate"): Promise<void>;
  start(): Promise<void>;
}

export interface ClusterOptions {
  /** Prepared like DB_URL's (bootstrap, migrations, seed, test helpers); true by default. */
  prepare?: boolean;
  /** listen_addresses; 127.0.0.1 by default. Every address it listens on is trusted. */
  listen?: string[];
  /** Files written into the data directory before the server starts, readable by it only
   * (e.g. server.crt and server.key), and postgresql.conf lines appended after ours. */
  files?: Record<string, string>;
  conf?: string[];
}

export async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} exited with ${out.code}:\n${text}`);
  return text;
}

/** Runs a server binary, as the `postgres` OS user when we are root. */
async function runServerTool(tool: string, args: string[]): Promise<string> {
  const bin = `${PG_BIN}/${tool}`;
  return Deno.uid() === 0 ? await run("runuser", ["-u", "postgres", "--", bin, ...args]) : await run(bin, args);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

export async function createCluster(
  { prepare = true, listen = ["127.0.0.1"], files = {}, conf = [] }: ClusterOptions = {},
): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "webhooks-pg-" });
  const data = `${dir}/data`;
  const log = `${dir}/postgres.log`;
  const ctl = (...args: string[]) => runServerTool("pg_ctl", ["-D", data, ...args]);
  const start = async () => {
    await ctl("start", "-w", "-t", "60", "-s", "-l", log);
  };
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  let running = false;
  try {
    const owner = Deno.uid() === 0
      ? {
        uid: Number((await run("id", ["-u", "postgres"])).trim()),
        gid: Number((await run("id", ["-g", "postgres"])).trim()),
      }
      : null;
    if (owner) await Deno.chown(dir, owner.uid, owner.gid);
    // Trust over TCP, for a cluster that lives a few seconds.
    await runServerTool("initdb", [
      "-D",
      data,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
      "--no-sync",
    ]);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${data}/${name}`, text, { mode: 0o600 });
      if (owner) await Deno.chown(`${data}/${name}`, owner.uid, owner.gid);
    }
    const port = freePort();
    // Appended as root, the files keep their owner; pg_ctl start (and restart) read them every time.
    await Deno.writeTextFile(
      `${data}/postgresql.conf`,
      [
        "",
        `port = ${port}`,
        `listen_addresses = '${listen.join(",")}'`,
        "unix_socket_directories = ''",
        "timezone = 'UTC'",
        "max_connections = 50",
        ...conf,
        "",
      ].join("\n"),
      { append: true },
    );
    const hba = listen.map((a) => `host all all ${a}/${a.includes(":") ? 128 : 32} trust`);
    await Deno.writeTextFile(`${data}/pg_hba.conf`, ["", ...hba, ""].join("\n"), { append: true });
    await start();
    running = true;
    const url = `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`;

    if (prepare) {
      // What `npm test` gives DB_URL, in the same order; one psql, stopping at the first error.
      const migrations = [...Deno.readDirSync(`${ROOT}/supabase/migrations`)]
        .map((e) => e.name)
        .filter((n) => /^\d+_.*\.sql$/.test(n))
        .sort()
        .map((n) => `${ROOT}/supabase/migrations/${n}`);
      const files = [
        `${ROOT}/scripts/bootstrap/supabase-platform.sql`,
        ...migrations,
        `${ROOT}/supabase/seed.sql`,
        `${ROOT}/supabase/tests/helpers/setup.sql`,
      ];
      await run(
        `${PG_BIN}/psql`,
        ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, ...files.flatMap((f) => ["-f", f])],
        { PGOPTIONS: "-c client_min_messages=warning", PGCONNECT_TIMEOUT: "10" },
      );
    }

    return {
      url,
      port,
      async stop(mode) {
        await ctl("stop", "-m", mode, "-w", "-t", "60", "-s");
      },
      start,
      async close(failed) {
        if (failed) {
          const text = await Deno.readTextFile(log).catch(() => "(no server log)");
          console.error(`--- server log of ${dir} (tail) ---\n${text.trimEnd().split("\n").slice(-40).join("\n")}`);
        }
        await ctl("stop", "-m", "immediate", "-w", "-s").catch(() => {});
        await remove();
      },
    };
  } catch (error) {
    if (running) await ctl("stop", "-m", "immediate", "-w", "-s").catch(() => {});
    await remove();
    throw error;
  }
}

// `npm start` keeps the stack serving when a part of it dies: a killed dispatcher worker
// or HTTP-mode function is restarted (the log says so) and delivers again; PostgreSQL
// restarted behind its back (pg_ctl restart) or crashed (kill -9, which only the stack
// itself can bring back) leaves PostgREST, the gateway and the worker serving. Ctrl-C
// still stops everything and leaves nothing behind.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createClient } from "@supabase/supabase-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import ws from "ws";
import { freePorts } from "../support/ports.ts";
import { findPostgres } from "../../scripts/lib/cluster.mjs";

const root = path.resolve(import.meta.dirname, "..", "..");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "serial-supervision-"));
fs.chmodSync(work, 0o755);
const stackEnvFile = path.join(work, "stack.env");
const dataDir = path.join(work, "db", "data");

// DEMO_RECEIVER_PORT is allowed as a webhook target by the stack's dispatcher.
const ports = await freePorts(["DB_PORT", "API_PORT", "REST_PORT", "FUNCTIONS_PORT", "DEMO_RECEIVER_PORT"]);

function processTree(): Map<number, { ppid: number; args: string }> {
  const out = execFileSync("ps", ["-e", "-o", "pid=,ppid=,args="], { encoding: "utf8" });
  const rows = new Map<number, { ppid: number; args: string }>();
  for (const line of out.trim().split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (m) rows.set(Number(m[1]), { ppid: Number(m[2]), args: m[3]! });
  }
  return rows;
}
function descendants(pid: number): number[] {
  const tree = processTree();
  const all: number[] = [];
  const visit = (p: number) => {
    for (const [child, row] of tree) if (row.ppid === p) (all.push(child), visit(child));
  };
  visit(pid);
  return all;
}
/** The stack's Deno process running the dispatcher: the worker, or the HTTP-mode function. */
function denoPid(mode: "worker" | "function"): number | undefined {
  const tree = processTree();
  return descendants(stack.pid!).find((pid) => {
    const args = tree.get(pid)?.args ?? "";
    return /deno/.test(args) && args.includes("webhook-dispatcher/index.ts") && args.includes("--worker") === (mode === "worker");
  });
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function eventually<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve().then(check).catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs / 1000} s. Stack output:\n${output.slice(-3000)}`);
    await sleep(200);
  }
}

/** pg_ctl on the stack's cluster, as the server's OS user (postgres when we are root). */
async function pgCtl(...args: string[]) {
  const pgBin = (await findPostgres())!.bin("pg_ctl");
  const cmd = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", pgBin] : [pgBin];
  const res = spawnSync(cmd[0]!, [...cmd.slice(1), "-D", dataDir, ...args], { stdio: "ignore", timeout: 60_000 });
  if (res.status !== 0) throw new Error(`pg_ctl ${args.join(" ")} failed (exit ${res.status})`);
}

const stack = spawn(process.execPath, [path.join(root, "scripts", "stack.mjs"), "--fresh"], {
  cwd: root,
  env: { ...process.env, ...ports, DB_DATA_DIR: path.join(work, "db"), STACK_ENV_FILE: stackEnvFile, NO_COLOR: "1" },
  stdio: ["ignore", "pipe", "pipe"],
});
let output = "";
stack.stdout.on("data", (d) => (output += d));
stack.stderr.on("data", (d) => (output += d));
const exited = new Promise<number | null>((resolve) => stack.on("exit", (code) => resolve(code)));

// The receiver the stack's dispatcher delivers to: process names of the events it got.
const received: string[] = [];
const receiver = http.createServer((req, res) => {
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    try {
      received.push(JSON.parse(body).data.process.name);
    } catch {
      /* not ours */
    }
    res.writeHead(204).end();
  });
});

let env: Record<string, string>;
let db: pg.Client;
let companyId: string;

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(Number(ports.DEMO_RECEIVER_PORT), "127.0.0.1", resolve));
  await eventually("stack.env", () => stack.exitCode === null && fs.existsSync(stackEnvFile), 150_000);
  env = Object.fromEntries(
    fs.readFileSync(stackEnvFile, "utf8").split("\n").filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  db = new pg.Client({ connectionString: env.DB_URL });
  db.on("error", () => {}); // this connection dies with the server below; the tests reconnect
  await db.connect();
  companyId = (await db.query<{ id: string }>("insert into public.companies (name) values ('Supervised') returning id")).rows[0]!.id;
  await db.query("insert into public.webhooks (company_id, trigger_type, url) values ($1, 'PROCESS_CREATED', $2)", [
    companyId,
    `http://127.0.0.1:${ports.DEMO_RECEIVER_PORT}/hook`,
  ]);
}, 180_000);

afterAll(async () => {
  await db?.end().catch(() => {});
  receiver.close();
  if (stack.exitCode === null) stack.kill("SIGKILL");
  fs.rmSync(work, { recursive: true, force: true });
});

/** Create a process (reconnecting if the server went away) and wait until its event is received. */
async function delivers(name: string) {
  await eventually(`insert process ${name}`, async () => {
    const client = new pg.Client({ connectionString: env.DB_URL });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("insert into public.processes (company_id, name) values ($1, $2)", [companyId, name]);
      return true;
    } finally {
      await client.end().catch(() => {});
    }
  });
  await eventually(`delivery of ${name}`, () => received.includes(name));
}

/** A supabase-js read through the gateway and PostgREST succeeds (retried while they reconnect). */
async function restServes() {
  const service = createClient(env.SUPABASE_URL!, env.SUPABASE_SERVICE_ROLE_KEY!, { realtime: { transport: ws as never }, auth: { persistSession: false } });
  await eventually("a read through the gateway", async () => {
    const { data, error } = await service.from("processes").select("name").eq("company_id", companyId);
    return !error && data!.length > 0;
  });
}

describe("npm start supervises its parts", () => {
  it("delivers to start with", async () => {
    await delivers("before anything dies");
  }, 60_000);

  it("a killed dispatcher worker is restarted with a note in the log, and delivers again", async () => {
    const worker = denoPid("worker")!;
    expect(worker).toBeDefined();
    process.kill(worker, "SIGKILL");
    await eventually("a new worker process", () => denoPid("worker") !== undefined && denoPid("worker") !== worker);
    expect(output).toMatch(/dispatcher exited unexpectedly \(exit \d+, SIGKILL\); restarting it in 1 s/);
    expect(output).toContain("restarting dispatcher (restart 1)");
    await delivers("after the worker was killed");
  }, 60_000);

  it("a killed HTTP-mode function is restarted and answers wake-ups again", async () => {
    const fn = denoPid("function")!;
    expect(fn).toBeDefined();
    process.kill(fn, "SIGKILL");
    await eventually("a new function process", () => denoPid("function") !== undefined && denoPid("function") !== fn);
    expect(output).toContain("restarting function (restart 1)");
    await eventually("the function answering through the gateway", async () => {
      const res = await fetch(`${env.SUPABASE_URL}/functions/v1/webhook-dispatcher`, { method: "POST", headers: { Authorization: `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}` } });
      return res.status === 200;
    });
  }, 60_000);

  it("PostgreSQL restarted behind the stack's back: it keeps serving and delivering", async () => {
    await pgCtl("restart", "-m", "fast", "-w", "-t", "60", "-l", path.join(work, "db", "postgres.log"));
    await restServes();
    await delivers("after a PostgreSQL restart");
    expect(stack.exitCode).toBeNull();
  }, 90_000);

  it("PostgreSQL crashed (kill -9): the stack starts it again, says so, and keeps serving", async () => {
    const postmaster = Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    process.kill(postmaster, "SIGKILL");
    await eventually("the restart note", () => output.includes("PostgreSQL is running again"), 60_000);
    expect(output).toContain("PostgreSQL stopped unexpectedly");
    await restServes();
    await delivers("after a PostgreSQL crash");
    expect(stack.exitCode).toBeNull();
  }, 120_000);

  it("Ctrl-C still stops everything, restarted children and the restarted server included", async () => {
    const children = descendants(stack.pid!);
    expect(children.length).toBeGreaterThanOrEqual(3);
    stack.kill("SIGINT");
    expect(await exited).toBe(130);
    await sleep(500);
    expect(children.filter(alive)).toEqual([]);
    expect(fs.existsSync(path.join(dataDir, "postmaster.pid"))).toBe(false);
    expect(fs.existsSync(stackEnvFile)).toBe(false);
  }, 60_000);
});

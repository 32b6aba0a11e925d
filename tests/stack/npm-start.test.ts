// `npm start` from nothing, as a newcomer runs it: the stack comes up on its own ports and
// data dir, writes its stack.env, answers supabase-js through the gateway and the function
// route, and after SIGINT leaves no child process behind.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createClient } from "@supabase/supabase-js";
import { afterAll, describe, expect, it } from "vitest";
import ws from "ws";
import { freePorts } from "../support/ports.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "serial-smoke-"));
fs.chmodSync(work, 0o755);
const stackEnvFile = path.join(work, "stack.env");

const ports = await freePorts(["DB_PORT", "API_PORT", "REST_PORT", "FUNCTIONS_PORT"]);

function descendants(pid: number): number[] {
  const out = execFileSync("ps", ["-e", "-o", "pid=,ppid="], { encoding: "utf8" });
  const children = new Map<number, number[]>();
  for (const line of out.trim().split("\n")) {
    const [child, parent] = line.trim().split(/\s+/).map(Number);
    children.set(parent!, [...(children.get(parent!) ?? []), child!]);
  }
  const all: number[] = [];
  const visit = (p: number) => (children.get(p) ?? []).forEach((c) => (all.push(c), visit(c)));
  visit(pid);
  return all;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const stack = spawn(process.execPath, [path.join(root, "scripts", "stack.mjs"), "--fresh"], {
  cwd: root,
  env: { ...process.env, ...ports, DB_DATA_DIR: path.join(work, "db"), STACK_ENV_FILE: stackEnvFile, NO_COLOR: "1" },
  stdio: ["ignore", "pipe", "pipe"],
});
let output = "";
stack.stdout.on("data", (d) => (output += d));
stack.stderr.on("data", (d) => (output += d));
const exited = new Promise<number | null>((resolve) => stack.on("exit", (code) => resolve(code)));

afterAll(() => {
  if (stack.exitCode === null) stack.kill("SIGKILL");
  fs.rmSync(work, { recursive: true, force: true });
});

describe("npm start", () => {
  it("starts from nothing and writes stack.env", async () => {
    const deadline = Date.now() + 150_000;
    while (!fs.existsSync(stackEnvFile)) {
      if (stack.exitCode !== null) throw new Error(`npm start exited early:\n${output}`);
      if (Date.now() > deadline) throw new Error(`no stack.env after 150 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const env = Object.fromEntries(fs.readFileSync(stackEnvFile, "utf8").split("\n").filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    expect(Object.keys(env)).toEqual(expect.arrayContaining(["DB_URL", "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "JWT_SECRET"]));
    expect(env.SUPABASE_URL).toBe(`http://127.0.0.1:${ports.API_PORT}`);
    expect(output).toContain("Local stack is ready");

    // supabase-js through the gateway and PostgREST.
    const service = createClient(env.SUPABASE_URL!, env.SUPABASE_SERVICE_ROLE_KEY!, { realtime: { transport: ws as never }, auth: { persistSession: false } });
    const { data, error } = await service.from("webhook_trigger_types").select("name").order("name");
    expect(error).toBeNull();
    expect(data!.map((r) => r.name)).toContain("PROCESS_REVISED");

    // The function route answers: refuses the anon key, drains with the service key.
    const refused = await fetch(`${env.SUPABASE_URL}/functions/v1/webhook-dispatcher`, { method: "POST", headers: { Authorization: `Bearer ${env.SUPABASE_ANON_KEY}` } });
    expect(refused.status).toBe(401);
    const drained = await fetch(`${env.SUPABASE_URL}/functions/v1/webhook-dispatcher`, { method: "POST", headers: { Authorization: `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}` } });
    expect(drained.status).toBe(200);
    expect(await drained.json()).toMatchObject({ claimed: expect.any(Number) });

    // The portal page at SUPABASE_URL/portal: the anon key in the page, never the service key.
    expect(env.PORTAL_URL).toBe(`${env.SUPABASE_URL}/portal`);
    const portal = await fetch(`${env.PORTAL_URL}/endpoints/new`);
    expect(portal.status).toBe(200);
    expect(portal.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    const html = await portal.text();
    expect(html).toContain(`content="${env.SUPABASE_ANON_KEY}"`);
    expect(html).not.toContain(env.SUPABASE_SERVICE_ROLE_KEY!);
  }, 180_000);

  it("stops every child on SIGINT", async () => {
    const children = descendants(stack.pid!);
    expect(children.length).toBeGreaterThanOrEqual(3); // postgrest and two deno processes (postgres is pg_ctl's daemon: checked below)
    stack.kill("SIGINT");
    const code = await exited;
    expect(code).toBe(130);
    await new Promise((r) => setTimeout(r, 500));
    expect(children.filter(alive)).toEqual([]);
    // The postgres server is a daemon of pg_ctl, not our child: check it through its pid file.
    expect(fs.existsSync(path.join(work, "db", "data", "postmaster.pid"))).toBe(false);
    expect(fs.existsSync(stackEnvFile)).toBe(false);
  }, 60_000);
});

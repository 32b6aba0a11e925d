// Deploying where pg_cron is installed, as on hosted Supabase: the migrations schedule the
// retry tick and the retention step, and a database that had the nightly prune (deployed
// before 20261130230200_prune_history_in_bounded_steps.sql) gets that job moved to the
// steps by the migration itself. A throwaway cluster of this test's own with pg_cron
// preloaded; the migrations pushed with `supabase db push`, in two deploys.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyBootstrap, applyMigrations, ensureTools, startCluster } from "../../scripts/lib/cluster.mjs";

const root = path.resolve(import.meta.dirname, "..", "..");
const STEPS_MIGRATION = "20261130230200_prune_history_in_bounded_steps.sql";
const work = fs.mkdtempSync(path.join(os.tmpdir(), "serial-cron-"));
fs.chmodSync(work, 0o755);
const migrations = path.join(work, "supabase", "migrations");

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Copies the checkout's migrations into the deploy's folder: those before `until`, or all. */
function stage(until?: string) {
  fs.mkdirSync(migrations, { recursive: true });
  fs.copyFileSync(path.join(root, "supabase", "config.toml"), path.join(work, "supabase", "config.toml"));
  for (const file of fs.readdirSync(path.join(root, "supabase", "migrations")).sort()) {
    if (until && file >= until) break;
    fs.copyFileSync(path.join(root, "supabase", "migrations", file), path.join(migrations, file));
  }
}

let cluster: Awaited<ReturnType<typeof startCluster>>;
let db: pg.Client;

async function jobs(): Promise<Record<string, { schedule: string; command: string }>> {
  const { rows } = await db.query("select jobname, schedule, command from cron.job order by jobname");
  return Object.fromEntries(rows.map((r) => [r.jobname, { schedule: r.schedule, command: r.command }]));
}

beforeAll(async () => {
  const tools = await ensureTools(["server", "pg_cron"]);
  cluster = await startCluster({ pg: tools, dir: path.join(work, "db"), port: await freePort(), pgCron: true, fresh: true, fast: true });
  await applyBootstrap(cluster);
  db = new pg.Client({ connectionString: cluster.url });
  await db.connect();
  await db.query("create extension pg_cron");
}, 120_000);

afterAll(async () => {
  await db?.end();
  await cluster?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe("the pg_cron jobs", () => {
  it("a deploy before the steps scheduled the nightly prune; the next deploy moves it to a step every minute", async () => {
    stage(STEPS_MIGRATION);
    await applyMigrations(cluster, { workdir: work });
    expect(await jobs()).toEqual({
      "webhooks-retention": { schedule: "17 3 * * *", command: "select private.prune_webhook_history()" },
      "webhooks-retry-tick": { schedule: "* * * * *", command: "select private.wake_dispatcher_if_due()" },
    });

    stage();
    await applyMigrations(cluster, { workdir: work });
    expect(await jobs()).toEqual({
      "webhooks-retention": { schedule: "* * * * *", command: "select private.prune_webhook_history_step()" },
      "webhooks-retry-tick": { schedule: "* * * * *", command: "select private.wake_dispatcher_if_due()" },
    });
  }, 120_000);

  it("scheduling again (a re-run of the deploy's wiring) keeps one job of each", async () => {
    await db.query("select private.schedule_webhook_jobs()");
    expect(Object.keys(await jobs())).toEqual(["webhooks-retention", "webhooks-retry-tick"]);
    // The command the job runs works on this database (here run by the test, not by pg_cron).
    const { rows } = await db.query("select private.prune_webhook_history_step() as pruned");
    expect(rows[0].pruned).toBe(0);
  });
});

// The real dispatcher (worker mode, as `npm start` runs it) against the test database, for
// tests that need deliveries to go out to a local receiver.
import { spawn, type ChildProcess } from "node:child_process";
import { dispatcherWorkerCommand } from "../../scripts/lib/services.mjs";

export async function startDispatcher({ dbUrl, allowedTargets, env = {} }: { dbUrl: string; allowedTargets: string[]; env?: Record<string, string> }) {
  const worker = dispatcherWorkerCommand({
    env: { ...process.env, ...env, SUPABASE_DB_URL: dbUrl, WEBHOOK_ALLOWED_TARGETS: allowedTargets.join(","), NO_COLOR: "1" },
    workerId: "portal-test-worker",
  });
  const child: ChildProcess = spawn(worker.cmd, worker.args, { cwd: worker.cwd, env: worker.env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!/worker started/.test(output)) {
    if (child.exitCode !== null) throw new Error(`the dispatcher exited:\n${output}`);
    if (Date.now() > deadline) throw new Error(`the dispatcher did not start in 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

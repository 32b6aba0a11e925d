// The dispatcher's start commands are the `worker` and `serve` tasks of deno.json in
// this folder, and nowhere else. By hand: `deno task worker`. `npm start`, the
// benchmarks and the end-to-end tests read the task here and spawn Deno with it
// themselves: `deno task` would put a task-runner process in front of the dispatcher
// (~20 MB more in the benchmark's peak-RSS measure, and one more hop for the signals
// the shutdown tests send). Plain JavaScript, so Node and Deno both import it.
import fs from "node:fs";

/**
 * A task of supabase/functions/deno.json as a command to spawn: run the Deno executable
 * with `args`, in this folder, with `env` added to the environment.
 *
 * @param {"worker" | "serve"} name
 * @returns {{ env: Record<string, string>, args: string[], line: string }}
 */
export function readTask(name) {
  const config = JSON.parse(fs.readFileSync(new URL("./deno.json", import.meta.url), "utf8"));
  const task = config.tasks?.[name];
  const line = typeof task === "string" ? task : task?.command;
  if (typeof line !== "string") throw new Error(`supabase/functions/deno.json has no task "${name}"`);
  // Only `[NAME=value ...] deno <args>`: anything a shell would interpret is refused, so
  // spawning the words directly runs exactly what `deno task` would.
  const words = line.trim().split(/\s+/);
  /** @type {Record<string, string>} */
  const env = {};
  while (/^[A-Za-z_]\w*=/.test(words[0] ?? "")) {
    const [key, ...value] = /** @type {string} */ (words.shift()).split("=");
    env[key] = value.join("=");
  }
  if (words.shift() !== "deno" || words.some((word) => /["'`$|&;<>()\\*?~{}]/.test(word))) {
    throw new Error(`task "${name}" must read \`[NAME=value ...] deno <args>\`, without shell syntax: ${line}`);
  }
  return { env, args: words, line };
}

// Running external commands and printing progress, with nothing but node:child_process.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code) => (s) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : String(s));
export const color = { green: paint(32), red: paint(31), yellow: paint(33), dim: paint(2), bold: paint(1) };

/** One progress line, prefixed so it stands apart from the output of child tools. */
export function say(msg) {
  console.log(`${color.dim('»')} ${msg}`);
}
export function warn(msg) {
  console.warn(`${color.yellow('!')} ${msg}`);
}

/** An error whose message is meant for humans as-is (no stack trace needed). */
export class UserError extends Error {}

// Every child we start, so a Ctrl-C can end them all (see killAll).
const live = new Set();
// Set by killAll: once we are shutting down, nothing new may start (except the cleanups).
let refuseNew = false;

/**
 * Run a command to completion.
 * - `capture: true` collects stdout/stderr (returned), otherwise they stream to our terminal.
 * - `tee: true` does both: streams live and collects (to parse a test tool's summary).
 * - `prefix: 'name'` streams the output line by line as `[name] ...` (long-running services).
 * - `input` is written to stdin; `timeoutMs` ends the child's group (result.timedOut).
 * - `uid`/`gid` run it as another OS user (libuv drops root's supplementary groups too),
 *   which is how the Postgres server tools run when we are root.
 * Each child gets its own process group: a terminal Ctrl-C reaches only us, and we end the
 * whole group (npx -> node -> tool chains included) in order; see killAll().
 * Resolves to { code, stdout, stderr }; never rejects on a non-zero exit (callers decide).
 */
export function run(cmd, args = [], opts = {}) {
  if (refuseNew && !opts.duringShutdown) return Promise.reject(new UserError(`not starting ${path.basename(cmd)}: shutting down`));
  const { capture = false, tee = false, prefix, input, env, cwd, uid, gid, timeoutMs } = opts;
  const piped = capture || tee || Boolean(prefix);
  const forward = prefix ? prefixer(prefix) : (stream) => (d) => stream.write(d);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: env ?? process.env,
      uid,
      gid,
      detached: true,
      stdio: [input === undefined ? 'ignore' : 'pipe', piped ? 'pipe' : 'inherit', piped ? 'pipe' : 'inherit'],
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    const toStdout = forward(process.stdout);
    const toStderr = forward(process.stderr);
    child.stdout?.on('data', (d) => {
      if (!prefix) stdout += d;
      if (tee || prefix) toStdout(d);
    });
    child.stderr?.on('data', (d) => {
      if (!prefix) stderr += d;
      if (tee || prefix) toStderr(d);
    });
    if (input !== undefined) child.stdin.end(input);
    let timedOut = false;
    const timer = timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          killGroup(child, 'SIGTERM');
          setTimeout(() => killGroup(child, 'SIGKILL'), 5000).unref();
        }, timeoutMs)
      : null;
    child.on('error', (err) => {
      live.delete(child);
      if (timer) clearTimeout(timer);
      reject(err.code === 'ENOENT' ? new UserError(`command not found: ${cmd}`) : err);
    });
    child.on('close', (code, signal) => {
      live.delete(child);
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), signal, timedOut, stdout, stderr });
    });
  });
}

// Forward complete lines as `[name] line` (a service's output, told apart from the others').
function prefixer(name) {
  const tag = color.dim(`[${name}]`);
  return (stream) => {
    let rest = '';
    return (d) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop();
      for (const line of lines) stream.write(`${tag} ${line}\n`);
    };
  };
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

/** Send `signal` to every running child's process group; SIGKILL the stragglers after graceMs. */
export async function killAll(signal = 'SIGTERM', graceMs = 5000) {
  refuseNew = true;
  const children = [...live];
  if (children.length === 0) return;
  const exited = Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('close', r)))));
  for (const c of children) killGroup(c, signal);
  let timer;
  const timeout = new Promise((r) => (timer = setTimeout(() => r('timeout'), graceMs)));
  if ((await Promise.race([exited, timeout])) === 'timeout') for (const c of children) killGroup(c, 'SIGKILL');
  clearTimeout(timer);
}

/** Like run(), but a non-zero exit throws with the captured output in the message. */
export async function mustRun(cmd, args, opts = {}) {
  const res = await run(cmd, args, { capture: true, ...opts });
  if (res.code !== 0) {
    const out = `${res.stdout}\n${res.stderr}`.trim();
    throw new UserError(`${opts.what ?? [cmd, ...args].join(' ')} failed (exit ${res.code})${out ? `:\n${out}` : ''}`);
  }
  return res;
}

/** Render rows (arrays of strings) as a plain aligned table. */
export function table(rows) {
  const strip = (s) => String(s).replace(/\x1b\[[0-9;]*m/g, '');
  const widths = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, strip(c).length)));
  return rows
    .map((row) => row.map((c, i) => (i === row.length - 1 ? c : String(c) + ' '.repeat(widths[i] - strip(c).length))).join('  '))
    .join('\n');
}

/** Write a generated, committed file (relative name `name` in messages) and say whether it changed. */
export function writeGenerated(file, text, name = file) {
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  if (before === text) {
    say(`${name} is already up to date`);
    return;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  say(`wrote ${name} (${before === null ? 'new' : 'changed'}): commit it with the migration`);
}

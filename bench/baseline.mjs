#!/usr/bin/env node
// `npm run bench:baseline`: today's code against the code issue 9 measured its "today's
// figures" with (4,292 / 4,094 deliveries/s, p50 1.7 ms, 101 MB), on this machine, in
// alternating rounds. Those figures were taken on another CPU (bench/RESULTS.md of
// 17166e9 names an Intel Xeon; every run since, an AMD EPYC), so "no regression over
// 10 %" is read here as a ratio of the two codes measured in the same session.
//
// Each round runs both procedures, each its own: the baseline's bench/run.mjs in a copy
// of that commit (`git archive`, under bench/.out/), and ours with `--only=throughput,latency`,
// one run each (BENCH_RUNS=1), in alternating order (baseline first in odd rounds).
// The ratio of a round is ours / the baseline's; the report gives the median of the rounds'
// ratios. Writes bench/RESULTS-baseline.md.
//
// Knobs: BENCH_BASELINE_REV (the commit before issue 9's first change), BENCH_BASELINE_ROUNDS (3).
// The baseline runs with its own knobs (batch 50, concurrency 50, 10 per endpoint: the
// settings of its figures); ours with the engine's defaults.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, denoExecutable } from '../scripts/lib/env.mjs';
import { run } from '../scripts/lib/run.mjs';
import { findPostgres } from '../scripts/lib/cluster.mjs';
import { log, machineInfo, machineMd, mdTable, median, round } from './lib/harness.mjs';

const REV = process.env.BENCH_BASELINE_REV ?? '17166e91f38b2fdd886be8d50292937bf4bc755a';
const ROUNDS = Number(process.env.BENCH_BASELINE_ROUNDS ?? 3);
const OUT_DIR = path.join(ROOT, 'bench', '.out');
// The lines of a bench/RESULTS.md medians table read here (both versions write them), and one
// column of its table of runs (one run: BENCH_RUNS=1).
const MEASURES = [
  { key: 'tp1', label: 'throughput, 1 endpoint (/s)', pattern: /^\| throughput, \d+ events to 1 endpoint \| ([\d.]+) deliveries\/s/m, higherIsBetter: true },
  { key: 'tp5', label: 'throughput, 5 endpoints (/s)', pattern: /^\| throughput, \d+ events to 5 endpoints \| ([\d.]+) deliveries\/s/m, higherIsBetter: true },
  { key: 'p50', label: 'latency p50 at 100 events/s (ms)', pattern: /^\| latency p50 at 100 events\/s \| ([\d.]+) ms/m, higherIsBetter: false },
  { key: 'p99', label: 'latency p99 (ms)', pattern: /^\| latency p99 \| ([\d.]+) ms/m, higherIsBetter: false },
  { key: 'clientP50', label: 'latency p50 from COMMIT returned (ms)', column: 'client-side p50 / p99 ms', higherIsBetter: false },
  { key: 'rss', label: 'dispatcher peak RSS (MB)', pattern: /^\| dispatcher peak RSS \(VmHWM\), worst[^|]*\| ([\d.]+) MB/m, higherIsBetter: false },
];

if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  throw new Error(`BENCH_BASELINE_ROUNDS must be a whole number of at least 1, got ${process.env.BENCH_BASELINE_ROUNDS}`);
}

/** A copy of the baseline commit, its node_modules ours, its worker our Deno binary. */
function prepareBaseline() {
  let full;
  try {
    full = execFileSync('git', ['rev-parse', '--verify', `${REV}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`BENCH_BASELINE_REV ${REV} is not a commit of this repository (a shallow clone lacks it: git fetch --unshallow)`);
  }
  const dir = path.join(OUT_DIR, `baseline-${full.slice(0, 12)}`);
  if (!fs.existsSync(path.join(dir, 'bench', 'run.mjs'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', '--format=tar', full], { cwd: ROOT, maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    // Its harness starts node_modules/.bin/deno, which is now the deno@2.1.4 launcher (a Node
    // process: it would measure Node's RSS and an older Deno). Both codes run our Deno binary.
    const harness = path.join(dir, 'bench', 'lib', 'harness.mjs');
    const before = fs.readFileSync(harness, 'utf8');
    const line = "export const DENO = path.join(ROOT, 'node_modules', '.bin', 'deno');";
    if (!before.includes(line)) throw new Error(`${harness} no longer names its Deno as expected: update prepareBaseline()`);
    fs.writeFileSync(harness, before.replace(line, `export const DENO = ${JSON.stringify(denoExecutable())};`));
  }
  fs.rmSync(path.join(dir, 'node_modules'), { force: true, recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return { dir, full };
}

function parseResults(file, who) {
  const text = fs.readFileSync(file, 'utf8');
  return Object.fromEntries(MEASURES.map(({ key, pattern, column }) => {
    const value = pattern ? text.match(pattern)?.[1] : runColumn(text, column);
    if (value === undefined) throw new Error(`${who}: ${file} has no figure for ${key}`);
    return [key, Number(value)];
  }));
}

/** The first figure in `column` of the table of runs (header `| run | ...`), first run. */
function runColumn(text, column) {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('| run |') && l.includes(column));
  if (at < 0) return undefined;
  const cells = (l) => l.split('|').slice(1, -1).map((c) => c.trim());
  const index = cells(lines[at]).indexOf(column);
  return cells(lines[at + 2] ?? '')[index]?.match(/^[\d.]+/)?.[0];
}

async function runBench(who, cwd, args, resultsFile, env) {
  log(`${who}: node bench/run.mjs ${args.join(' ')}`);
  const res = await run(process.execPath, ['bench/run.mjs', ...args], {
    cwd, capture: true, env: { ...process.env, BENCH_RUNS: '1', ...env },
  });
  fs.writeFileSync(path.join(OUT_DIR, `baseline-${who}.log`), res.stdout + res.stderr);
  if (res.code !== 0) throw new Error(`${who}'s bench failed (exit ${res.code}): see bench/.out/baseline-${who}.log`);
  return parseResults(resultsFile, who);
}

async function main() {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const started = new Date();
  const base = prepareBaseline();
  const procedures = {
    // The baseline's run also has a stale-statistics drain and pgbench: kept short, not read.
    baseline: () => runBench('baseline', base.dir, [], path.join(base.dir, 'bench', 'RESULTS.md'),
      { BENCH_PGBENCH_SECONDS: '2', BENCH_STALE_EVENTS: '1000' }),
    ours: () => runBench('ours', ROOT, ['--only=throughput,latency'], path.join(OUT_DIR, 'RESULTS-throughput-latency.md'), {}),
  };
  const rounds = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const order = i % 2 === 1 ? ['baseline', 'ours'] : ['ours', 'baseline'];
    const round_ = {};
    for (const who of order) round_[who] = await procedures[who]();
    rounds.push(round_);
    log(`round ${i}/${ROUNDS}: ` + MEASURES.map(({ key }) => `${key} ${round_.baseline[key]} -> ${round_.ours[key]}`).join(', '));
  }

  const ratio = (r, key) => r.ours[key] / r.baseline[key];
  const rows = MEASURES.map(({ key, label, higherIsBetter }) => {
    const r = median(rounds.map((x) => ratio(x, key)));
    const regressed = higherIsBetter ? r < 0.9 : r > 1.1;
    return [label, median(rounds.map((x) => x.baseline[key])), median(rounds.map((x) => x.ours[key])), `${round(r, 2)}x`,
      key === 'p99' || key === 'clientP50' ? '' : (regressed ? '**regressed** over 10 %' : 'within 10 % or better')];
  });
  const perRound = mdTable([
    ['round', 'order', ...MEASURES.map((m) => `${m.key}: baseline -> ours`)],
    ...rounds.map((x, i) => [i + 1, i % 2 === 0 ? 'baseline, ours' : 'ours, baseline',
      ...MEASURES.map(({ key }) => `${x.baseline[key]} -> ${x.ours[key]} (${round(ratio(x, key), 2)}x)`)]),
  ]);
  const m = await machineInfo({ pg: await findPostgres() });
  const md = `# Today's code against issue 9's baseline, on this machine

Written by \`npm run bench:baseline\` (bench/baseline.mjs), started ${started.toISOString()}.

## Machine

${machineMd(m)}

## Method

- **Baseline**: commit \`${base.full.slice(0, 12)}\`, the last before issue 9's first change; its
  bench/RESULTS.md holds the figures the issue calls "today's" (4,292 / 4,094 deliveries/s,
  p50 1.7 ms, 101 MB), measured on an Intel Xeon. Run from a \`git archive\` copy with its own
  procedure (bench/run.mjs of that commit: its migrations, dispatcher and knobs, batch 50,
  concurrency 50, 10 per endpoint), one run per round, on our Deno binary.
- **Ours**: this checkout's \`npm run bench -- --only=throughput,latency\`, one run per round,
  the engine's defaults.
- Rounds alternate which goes first; a round's ratio is ours / baseline; the table gives the
  medians of ${ROUNDS} rounds. "No regression over 10 %": ratio >= 0.9 for throughput, <= 1.1
  for latency and memory.

## Medians of ${ROUNDS} rounds

${mdTable([['measure', 'baseline', 'ours', 'ours / baseline (median of rounds)', ''], ...rows])}

## Rounds

${perRound}
`;
  fs.writeFileSync(path.join(ROOT, 'bench', 'RESULTS-baseline.md'), md);
  console.log(md);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

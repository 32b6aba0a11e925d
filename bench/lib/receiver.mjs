// The benchmark's webhook receiver: a plain Node http server on 127.0.0.1, run as a child
// process (bench/lib/harness.mjs forks it) so its CPU is measured apart from the load
// generator. By default it answers every POST with 200 at once and records every
// webhook-id: first receipts, duplicates, and the commit-to-receipt latency of payloads
// that carry `data.sent_at` (epoch milliseconds, taken by Postgres' clock_timestamp() in
// the statement that enqueued the event; see bench/README.md "Latency method").
//
// Per-path behaviours (`behave`), for the isolation scenarios: `hang` holds the request
// unanswered until `reset` (the dispatcher's timeout ends it), `delay` answers 200 after
// `ms`, `fail` answers `status` (500) at once. Rules match a path exactly or, when the rule
// key ends in `*`, by prefix.
//
// Per path it also counts requests in flight (and their peak: a cap check), and, for
// process events (`data.process_id` + `data.revision`), whether each process's revisions
// arrive in order (`outOfOrder`: a revision received after a later one of its process),
// with each first receipt's time by (process, revision) for latency against the commit.
//
// Every 50th request's signature is verified with `standardwebhooks` against the
// endpoint's secret, so a system that signs wrongly shows up as bad signatures.
//
// Control is over the IPC channel: { rid, cmd, ... } in, { rid, ... } out.
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const VERIFY_EVERY = 50;
const now = () => performance.timeOrigin + performance.now();

let verifiers = new Map(); // url path -> Webhook
let rules = new Map(); // path or 'prefix*' -> { mode, ms, status }
let state;
let ceiling; // the raw HTTP ceiling's requests: the same work, kept apart
const held = new Set(); // responses of `hang` requests, ended by reset

function newPathStats() {
  return {
    unique: 0,
    hits: 0,
    inFlight: 0,
    maxInFlight: 0,
    firstAt: null,
    lastAt: null,
    lastRevision: new Map(), // process id -> highest revision received
    outOfOrder: 0,
    receivedAt: [], // [process id, revision, receipt time], first receipts of process events
  };
}

function reset() {
  for (const res of held) res.destroy();
  held.clear();
  ceiling = { firstSeen: new Map(), hits: 0, duplicates: 0 };
  state = {
    firstSeen: new Map(), // webhook-id -> receipt time
    hits: 0,
    duplicates: 0,
    latencies: [], // ms, first receipts carrying data.sent_at
    receivedAtBySeq: [], // [seq, receipt time], for the client-side cross-check
    firstAt: null,
    lastAt: null,
    verified: 0,
    badSignatures: 0,
    paths: new Map(), // url path -> newPathStats()
  };
}
reset();

function ruleFor(path) {
  const exact = rules.get(path);
  if (exact) return exact;
  for (const [key, rule] of rules) if (key.endsWith('*') && path.startsWith(key.slice(0, -1))) return rule;
  return null;
}

function pathStats(path) {
  let s = state.paths.get(path);
  if (!s) state.paths.set(path, (s = newPathStats()));
  return s;
}

function handle(req, res, body) {
  const at = now();
  // The raw HTTP ceiling (autocannon): the same bookkeeping as a delivery, in its own
  // bucket, so it neither counts as deliveries nor costs the receiver less per request.
  if (req.url === '/ceiling') {
    ceiling.hits++;
    const id = req.headers['webhook-id'];
    if (ceiling.firstSeen.has(id)) ceiling.duplicates++;
    else ceiling.firstSeen.set(id, at);
    try {
      JSON.parse(body);
    } catch {
      /* counted all the same */
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  const ps = pathStats(req.url);
  state.hits++;
  ps.hits++;
  const id = req.headers['webhook-id'];
  if (state.firstSeen.has(id)) {
    state.duplicates++;
  } else {
    state.firstSeen.set(id, at);
    state.firstAt ??= at;
    state.lastAt = at;
    ps.unique++;
    ps.firstAt ??= at;
    ps.lastAt = at;
    try {
      const data = JSON.parse(body).data ?? {};
      if (typeof data.sent_at === 'number') state.latencies.push(at - data.sent_at);
      if (typeof data.seq === 'number') state.receivedAtBySeq.push([data.seq, at]);
      if (typeof data.process_id === 'string' && typeof data.revision === 'number') {
        const last = ps.lastRevision.get(data.process_id) ?? 0;
        if (data.revision < last) ps.outOfOrder++;
        else ps.lastRevision.set(data.process_id, data.revision);
        ps.receivedAt.push([data.process_id, data.revision, at]);
      }
    } catch {
      /* a non-JSON body still counts as received */
    }
  }
  if (state.hits % VERIFY_EVERY === 1) {
    const verifier = verifiers.get(req.url);
    if (verifier) {
      state.verified++;
      try {
        verifier.verify(body, req.headers);
      } catch {
        state.badSignatures++;
      }
    }
  }

  const rule = ruleFor(req.url);
  const finish = (status) => {
    ps.inFlight--;
    if (!res.destroyed) res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'failing on purpose');
  };
  ps.inFlight++;
  ps.maxInFlight = Math.max(ps.maxInFlight, ps.inFlight);
  if (!rule) return finish(200);
  switch (rule.mode) {
    case 'hang':
      held.add(res);
      res.once('close', () => {
        if (held.delete(res)) ps.inFlight--;
      });
      return;
    case 'delay':
      setTimeout(() => finish(200), rule.ms ?? 1000);
      return;
    case 'fail':
      return finish(rule.status ?? 500);
    default:
      return finish(200);
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
});
// Long keep-alive: delivering clients reuse connections across idle gaps between batches.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
// Held requests must not be cut by Node's own request timeout (5 min by default).
server.requestTimeout = 0;

const summary = (s) => ({
  unique: s.unique, hits: s.hits, inFlight: s.inFlight, maxInFlight: s.maxInFlight,
  firstAt: s.firstAt, lastAt: s.lastAt, outOfOrder: s.outOfOrder,
});

const commands = {
  reset() {
    reset();
    return {};
  },
  secrets({ secrets }) {
    verifiers = new Map(Object.entries(secrets).map(([p, s]) => [p, new Webhook(s)]));
    return {};
  },
  /** { rules: { '/hook/x': { mode: 'hang' | 'delay' | 'fail' | 'ok', ms, status } } } replaces all rules. */
  behave({ rules: next = {} }) {
    rules = new Map(Object.entries(next));
    return {};
  },
  count() {
    return { unique: state.firstSeen.size, hits: state.hits, ceilingHits: ceiling.hits, lastAt: state.lastAt };
  },
  /** Totals over the paths starting with `prefix`: unique, hits, in flight now, last receipt. */
  countPaths({ prefix }) {
    const out = { unique: 0, hits: 0, inFlight: 0, firstAt: null, lastAt: null, outOfOrder: 0 };
    for (const [p, s] of state.paths) {
      if (!p.startsWith(prefix)) continue;
      out.unique += s.unique;
      out.hits += s.hits;
      out.inFlight += s.inFlight;
      out.outOfOrder += s.outOfOrder;
      if (s.firstAt !== null) out.firstAt = Math.min(out.firstAt ?? Infinity, s.firstAt);
      if (s.lastAt !== null) out.lastAt = Math.max(out.lastAt ?? -Infinity, s.lastAt);
    }
    return out;
  },
  stats() {
    const { firstSeen, latencies, receivedAtBySeq, paths, ...rest } = state;
    return {
      ...rest,
      unique: firstSeen.size,
      latencies,
      receivedAtBySeq,
      paths: Object.fromEntries([...paths].map(([p, s]) => [p, summary(s)])),
    };
  },
  /** First receipts of process events at one path: [process id, revision, receipt time]. */
  arrivals({ path }) {
    return { arrivals: state.paths.get(path)?.receivedAt ?? [] };
  },
  /** Lost = expected ids never received; unexpected = received ids nobody expected. */
  check({ expected }) {
    const want = new Set(expected);
    let lost = 0;
    for (const id of want) if (!state.firstSeen.has(id)) lost++;
    let unexpected = 0;
    for (const id of state.firstSeen.keys()) if (!want.has(id)) unexpected++;
    return { lost, unexpected };
  },
};

process.on('message', (msg) => {
  const reply = commands[msg.cmd]?.(msg) ?? { error: `unknown command ${msg.cmd}` };
  process.send({ rid: msg.rid, ...reply });
});
process.on('disconnect', () => process.exit(0));

server.listen(Number(process.env.RECEIVER_PORT ?? 0), '127.0.0.1', () => {
  process.send({ ready: true, port: server.address().port });
});

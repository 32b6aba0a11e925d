// The benchmark's webhook receiver: a plain Node http server on 127.0.0.1, run as a child
// process (bench/lib/harness.mjs forks it) so its CPU is measured apart from the load
// generator. It answers every POST with 200 at once and records every webhook-id:
// first receipts, duplicates, and the commit-to-receipt latency of payloads that carry
// `data.sent_at` (epoch milliseconds, taken by Postgres' clock_timestamp() in the
// statement that enqueued the event; see bench/README.md "Latency method").
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
let state;
let ceiling; // the raw HTTP ceiling's requests: the same work, kept apart
function reset() {
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
  };
}
reset();

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
  state.hits++;
  const id = req.headers['webhook-id'];
  if (state.firstSeen.has(id)) {
    state.duplicates++;
  } else {
    state.firstSeen.set(id, at);
    state.firstAt ??= at;
    state.lastAt = at;
    try {
      const data = JSON.parse(body).data ?? {};
      if (typeof data.sent_at === 'number') state.latencies.push(at - data.sent_at);
      if (typeof data.seq === 'number') state.receivedAtBySeq.push([data.seq, at]);
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
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
});
// Long keep-alive: delivering clients reuse connections across idle gaps between batches.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

const commands = {
  reset() {
    reset();
    return {};
  },
  secrets({ secrets }) {
    verifiers = new Map(Object.entries(secrets).map(([p, s]) => [p, new Webhook(s)]));
    return {};
  },
  count() {
    return { unique: state.firstSeen.size, hits: state.hits, ceilingHits: ceiling.hits, lastAt: state.lastAt };
  },
  stats() {
    const { firstSeen, latencies, receivedAtBySeq, ...rest } = state;
    return { ...rest, unique: firstSeen.size, latencies, receivedAtBySeq };
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

// End to end, everything at once: 24 companies write concurrently while a third of their
// endpoints are down, answer garbage, fail every other request or hang; some endpoints are
// capped, rate-limited or ordered; an ADMIN disables one endpoint and deletes another mid-run;
// one of two dispatchers is killed and a third starts. Then the broken receivers heal.
// Asserted: nothing is lost or left pending, nothing reaches another tenant, no cap, rate or
// order is broken, and the attempt log agrees with the deliveries. The single-concern tests
// (isolation_test.ts, resilience_test.ts, ordered_test.ts, ...) say which line keeps each
// guarantee; this one checks that they still hold together.
import assert from "node:assert/strict";
import {
  createProcess,
  e2eTest,
  reviseProcess,
  sleep,
  verifySignature,
  waitFor,
  webhookSecret,
} from "../_test/e2e.ts";
import type { ReceivedRequest } from "../_test/receiver.ts";

/** What an endpoint does until the receivers heal (then every kind answers 200 at once). */
const KINDS = ["ok", "slow", "capped", "rated", "down", "garbage", "flaky", "hanging", "ordered"] as const;
type Kind = typeof KINDS[number];
/** Kinds that never fail: every delivery to them must succeed. */
const NEVER_FAIL: Kind[] = ["ok", "slow", "capped", "rated"];
const CAP = 2;
const RATE = 5;
const RATE_CAPACITY = 1; // private.endpoint_rate_capacity(5): a tenth of a second, at least one
const COMPANIES = 24;
const PROCESSES = 3;
const REVISIONS = 4; // per process: 24 x 3 x 4 = 288 revisions, 576 deliveries

interface Endpoint {
  id: string;
  company: string;
  kind: Kind;
  path: string;
  secret: string;
  /** Requests in flight at the receiver now, and the most ever. */
  inFlight: number;
  most: number;
  /** Arrival times (ms) of every request. */
  arrivals: number[];
  /** webhook-id of every request answered 2xx, in the order answered. */
  accepted: string[];
  /** Process revisions answered 2xx, in the order answered (ordered endpoints). */
  acceptedRevisions: { id: string; process: string; revision: number }[];
  requests: ReceivedRequest[];
}

e2eTest("many tenants, a third of them broken, a dispatcher killed: nothing lost, leaked, over a limit or out of order", async (t) => {
  await t.settings({ circuit_failure_threshold: 3, circuit_probe_min_seconds: 1, circuit_probe_max_seconds: 2 });
  let healed = false;
  const endpoints = new Map<string, Endpoint>(); // by path
  const receiver = t.receiver(async (request) => {
    const endpoint = endpoints.get(request.path);
    if (!endpoint) return new Response("unknown path", { status: 404 });
    endpoint.requests.push(request);
    endpoint.arrivals.push(Date.now());
    endpoint.most = Math.max(endpoint.most, ++endpoint.inFlight);
    try {
      const response = await answer(endpoint);
      if (response.status >= 200 && response.status < 300) {
        const id = request.headers.get("webhook-id") ?? "";
        endpoint.accepted.push(id);
        const body = JSON.parse(request.body);
        endpoint.acceptedRevisions.push({ id, process: body.data.process_id, revision: body.data.revision });
      }
      return response;
    } finally {
      endpoint.inFlight--;
    }
  });

  async function answer(endpoint: Endpoint): Promise<Response> {
    const n = endpoint.requests.length;
    switch (healed ? "ok" : endpoint.kind) {
      case "slow":
        await sleep(200 + (n % 5) * 100, t.ending);
        return new Response("ok");
      case "capped":
        await sleep(100, t.ending);
        return new Response("ok");
      case "down":
        return new Response("maintenance", { status: 503 });
      case "garbage":
        return [
          new Response(null, { status: 302, headers: { location: "http://169.254.169.254/" } }),
          new Response("<html>not found</html>", { status: 404 }),
          new Response("slow down", { status: 429, headers: { "retry-after": "1" } }),
          new Response("}{", { status: 400 }),
        ][n % 4];
      case "flaky":
      case "ordered":
        return n % 2 === 0 ? new Response("oops", { status: 500 }) : new Response("ok");
      case "hanging":
        // Past the 2 s attempt timeout: the dispatcher gives up first.
        await waitFor("the receivers to heal", () => healed || t.ending.aborted, { timeoutMs: 120_000, intervalMs: 50 });
        return new Response("too late");
      default:
        return new Response("ok");
    }
  }

  // Two endpoints per company, the kinds dealt round-robin (each kind on 5 or 6 endpoints).
  const companies: { id: string; processes: string[] }[] = [];
  for (let c = 0; c < COMPANIES; c++) {
    const company = await t.company();
    companies.push({ id: company, processes: [] });
    for (let e = 0; e < 2; e++) {
      const kind = KINDS[(c * 2 + e) % KINDS.length];
      const path = `/c${c}/e${e}/${kind}`;
      const id = await t.webhook(company, `${receiver.origin}${path}`);
      if (kind === "capped") await t.sql`update public.webhooks set max_concurrent_requests = ${CAP} where id = ${id}`;
      if (kind === "rated") await t.sql`update public.webhooks set max_requests_per_second = ${RATE} where id = ${id}`;
      if (kind === "ordered") await t.sql`update public.webhooks set delivery_order = 'ordered' where id = ${id}`;
      endpoints.set(path, {
        id, company, kind, path, secret: await webhookSecret(t.sql, id),
        inFlight: 0, most: 0, arrivals: [], accepted: [], acceptedRevisions: [], requests: [],
      });
    }
    for (let p = 0; p < PROCESSES; p++) companies[c].processes.push(await createProcess(t.sql, company, `Station ${c}.${p}`));
  }
  const byKind = (kind: Kind) => [...endpoints.values()].filter((e) => e.kind === kind);
  const disabled = byKind("ok")[0];
  const deleted = byKind("slow")[0];

  // Six attempts, 0.2 s apart; the circuit opens after 3 failures in a row and probes each 1-2 s.
  const env = { WEBHOOK_RETRY_SCHEDULE: "0.2,0.2,0.2,0.2,0.2" };
  const first = await t.dispatcher({ allowedTargets: [receiver.target], env });
  await t.dispatcher({ allowedTargets: [receiver.target], env });

  // Four writers, each revision its own transaction, taking (company, process) pairs from one
  // queue, round by round; the disable and the delete come after the 96th and 144th.
  const work: { company: number; process: string }[] = [];
  for (let r = 0; r < REVISIONS; r++) {
    for (const [c, company] of companies.entries()) for (const process of company.processes) work.push({ company: c, process });
  }
  const revisionsOf = new Map<string, number>(companies.map((c) => [c.id, 0]));
  // When each revision began, per company: one that began after the disable (or delete)
  // returned must create nothing for that endpoint, however long the change took.
  const startsOf = new Map<string, number[]>(companies.map((c) => [c.id, []]));
  const changedAt = new Map<Endpoint, number>();
  const revise = async (company: string, process: string) => {
    startsOf.get(company)!.push(performance.now());
    await reviseProcess(t.sql, process, `rev ${crypto.randomUUID()}`);
    revisionsOf.set(company, revisionsOf.get(company)! + 1);
  };
  let done = 0;
  const writer = async () => {
    for (let item = work.shift(); item; item = work.shift()) {
      await revise(companies[item.company].id, item.process);
      done++;
      if (done === 96) {
        await t.sql`update public.webhooks set is_active = false where id = ${disabled.id}`;
        changedAt.set(disabled, performance.now());
      } else if (done === 144) {
        await t.sql`delete from public.webhooks where id = ${deleted.id}`;
        changedAt.set(deleted, performance.now());
        first.kill("SIGKILL");
        await t.dispatcher({ allowedTargets: [receiver.target], env });
      }
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
  assert.equal((await first.exited).signal, "SIGKILL");
  // One more revision of each changed endpoint's company, surely after its change.
  for (const endpoint of [disabled, deleted]) {
    const company = companies.find((c) => c.id === endpoint.company)!;
    await revise(company.id, company.processes[0]);
  }

  // Let the broken endpoints fail for a while (circuits open, retries spent), then heal.
  await sleep(3_000);
  healed = true;
  const ours = t.sql.array(companies.map((c) => c.id));
  // The killed dispatcher's leases (8 s) expire; open circuits are probed within 2 s.
  await waitFor("every delivery to end", async () => {
    const [{ pending }] = await t.sql`
      select count(*)::int as pending from public.webhook_deliveries
       where company_id = any (${ours}::uuid[]) and state = 'pending'`;
    return pending === 0;
  }, { timeoutMs: 60_000, intervalMs: 250 });

  const deliveries = await t.sql<{ id: string; webhook_id: string; company_id: string; state: string; attempt_count: number; attempts: number; numbers: number; last_outcome: string | null }[]>`
    select d.id, d.webhook_id, d.company_id, d.state, d.attempt_count,
           count(a.id)::int as attempts, count(distinct a.attempt_number)::int as numbers,
           (array_agg(a.outcome::text order by a.attempt_number desc, a.created_at desc))[1] as last_outcome
      from public.webhook_deliveries d
      left join public.webhook_delivery_attempts a on a.delivery_id = d.id
     where d.company_id = any (${ours}::uuid[])
     group by d.id`;

  // The atomic outbox: one delivery per revision to every endpoint subscribed when it committed.
  for (const endpoint of endpoints.values()) {
    const count = deliveries.filter((d) => d.webhook_id === endpoint.id).length;
    if (endpoint === disabled || endpoint === deleted) {
      const before = startsOf.get(endpoint.company)!.filter((at) => at < changedAt.get(endpoint)!).length;
      assert.ok(before < revisionsOf.get(endpoint.company)!, `${endpoint.path}: premise: revisions began after its change`);
      assert.ok(count <= before, `${endpoint.path}: nothing created by a revision that began after its disable or delete (${count} deliveries, ${before} revisions began before)`);
    } else {
      assert.equal(count, revisionsOf.get(endpoint.company), `${endpoint.path}: one delivery per revision of its company`);
    }
  }
  for (const d of deliveries) {
    const endpoint = [...endpoints.values()].find((e) => e.id === d.webhook_id)!;
    assert.equal(d.company_id, endpoint.company);
    // Attempts: each logged once under its own number, never more than the claims made.
    assert.equal(d.numbers, d.attempts, `${endpoint.path}: one log row per attempt number`);
    assert.ok(d.attempts <= d.attempt_count, `${endpoint.path}: ${d.attempts} logged attempts, ${d.attempt_count} claims`);
    if (endpoint === disabled || endpoint === deleted) {
      assert.ok(["succeeded", "cancelled"].includes(d.state), `${endpoint.path}: ${d.state}`);
    } else if (NEVER_FAIL.includes(endpoint.kind)) {
      assert.equal(d.state, "succeeded", `${endpoint.path}: an endpoint that never fails got everything`);
    } else {
      assert.ok(["succeeded", "failed"].includes(d.state), `${endpoint.path}: ${d.state}`);
      if (d.state === "failed") assert.equal(d.attempt_count, 6, `${endpoint.path}: failed only with its attempts spent`);
    }
    if (d.state === "succeeded") {
      assert.equal(d.last_outcome, "succeeded", `${endpoint.path}: the log's last attempt says succeeded`);
      assert.ok(endpoint.accepted.includes(d.id), `${endpoint.path}: the receiver answered 2xx to ${d.id}`);
    }
  }

  for (const endpoint of endpoints.values()) {
    // Nothing of another tenant, and every request signed with this endpoint's secret.
    for (const request of endpoint.requests) {
      const body = verifySignature(endpoint.secret, request) as { company_id: string };
      assert.equal(body.company_id, endpoint.company, `${endpoint.path}: only its company's events`);
    }
  }
  for (const endpoint of byKind("capped")) {
    assert.ok(endpoint.most <= CAP, `${endpoint.path}: ${endpoint.most} requests at once, cap ${CAP}`);
  }
  for (const endpoint of byKind("rated")) {
    // Any second holds at most the rate plus the bucket (and one for arrival jitter).
    const times = endpoint.arrivals;
    for (let i = 0; i < times.length; i++) {
      const inWindow = times.filter((at) => at >= times[i] && at < times[i] + 1_000).length;
      assert.ok(inWindow <= RATE + RATE_CAPACITY + 1, `${endpoint.path}: ${inWindow} requests within a second`);
    }
  }
  for (const endpoint of byKind("ordered")) {
    // Each process's revisions reached it in order (a repeat of one already taken aside).
    const seen = new Set<string>();
    const last = new Map<string, number>();
    for (const { id, process, revision } of endpoint.acceptedRevisions) {
      if (seen.has(id)) continue;
      seen.add(id);
      assert.ok(revision > (last.get(process) ?? 0), `${endpoint.path}: revision ${revision} of ${process} after ${last.get(process)}`);
      last.set(process, revision);
    }
  }
  // The broken kinds really were broken, and the run really exercised the limits.
  assert.ok(byKind("capped").some((e) => e.most === CAP), "some capped endpoint reached its cap");
  assert.ok(deliveries.some((d) => d.state === "cancelled"), "the disable or the delete cancelled something");
});

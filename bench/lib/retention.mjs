// Retention (migration 20261130230200_prune_history_in_bounded_steps.sql): how long pruning
// holds one transaction open, which is how long it holds back VACUUM for every table the
// dispatchers churn. The same history is pruned twice: once by
// private.prune_webhook_history() in one transaction (what the nightly job did), once by
// private.prune_webhook_history_step() until its sweep is back at page 0 (what the job does
// every minute now, here back to back), each step its own transaction.
// The history: BENCH_RETENTION_DELIVERIES succeeded deliveries to one endpoint, completed
// 31 days ago, each with its event and one attempt, loaded by set-based SQL into an
// emptied outbox and vacuumed.
import { clearOutbox, log, mdTable, median, now, round } from './harness.mjs';

const num = (name, fallback) => Number(process.env[name] ?? fallback);
export const RETENTION = { deliveries: num('BENCH_RETENTION_DELIVERIES', 300_000) };

/** `deliveries` succeeded deliveries, each with its event and one attempt, 31 days old, in an emptied outbox. */
export async function loadHistory(db, companyId, webhookId, deliveries = RETENTION.deliveries) {
  await clearOutbox(db);
  await db.query(
    `insert into public.webhook_events (company_id, trigger_type, payload, created_at)
     select $1, 'PROCESS_REVISED', jsonb_build_object('type', 'PROCESS_REVISED', 'data', jsonb_build_object('n', g)),
            now() - interval '31 days'
       from generate_series(1, $2::int) g`,
    [companyId, deliveries],
  );
  await db.query(
    `insert into public.webhook_deliveries (company_id, event_id, webhook_id, state, attempt_count, next_attempt_at, completed_at, created_at)
     select e.company_id, e.id, $1, 'succeeded', 1, null, e.created_at, e.created_at from public.webhook_events e`,
    [webhookId],
  );
  await db.query(
    `insert into public.webhook_delivery_attempts (delivery_id, company_id, attempt_number, outcome, status, duration_ms, created_at)
     select d.id, d.company_id, 1, 'succeeded', 200, 5, d.created_at from public.webhook_deliveries d`,
  );
  await db.query('vacuum analyze public.webhook_events, public.webhook_deliveries, public.webhook_delivery_attempts');
  const { rows: [pages] } = await db.query(
    `select pg_relation_size('public.webhook_deliveries') / 8192 as deliveries, pg_relation_size('public.webhook_events') / 8192 as events`,
  );
  return { deliveryPages: Number(pages.deliveries), eventPages: Number(pages.events) };
}

export async function retentionScenario({ db, fixtures }) {
  const companyId = fixtures.companies.one.id;
  const { rows: [{ id: webhookId }] } = await db.query('select id from public.webhooks where company_id = $1 limit 1', [companyId]);

  const layout = await loadHistory(db, companyId, webhookId);
  let t0 = now();
  const { rows: [{ n: whole }] } = await db.query('select private.prune_webhook_history() as n');
  const wholeMs = round(now() - t0, 0);
  log(`  retention: ${whole} deliveries in one transaction: ${wholeMs} ms (${layout.deliveryPages} + ${layout.eventPages} pages)`);

  await loadHistory(db, companyId, webhookId);
  await db.query('update private.webhook_prune_cursor set next_page = 0, sweep_started_at = null');
  const { rows: [{ prune_pages_per_step: pagesPerStep }] } = await db.query('select prune_pages_per_step from private.webhook_settings');
  const steps = [];
  let pruned = 0;
  do {
    t0 = now();
    const { rows: [{ n }] } = await db.query('select private.prune_webhook_history_step() as n');
    steps.push(now() - t0);
    pruned += n;
  } while (Number((await db.query('select next_page from private.webhook_prune_cursor')).rows[0].next_page) !== 0);
  const { rows: [{ left }] } = await db.query(`select count(*)::int as left from public.webhook_deliveries where state = 'succeeded'`);
  const result = {
    deliveries: RETENTION.deliveries, ...layout, pagesPerStep,
    wholeMs, wholePruned: whole,
    steps: steps.length, stepPruned: pruned, left,
    stepMedianMs: round(median(steps), 0), stepMaxMs: round(Math.max(...steps), 0),
    stepTotalMs: round(steps.reduce((a, b) => a + b, 0), 0),
  };
  result.longestRatio = round(result.stepMaxMs / wholeMs, 2);
  log(`  retention: ${pruned} in ${steps.length} steps of ${pagesPerStep} pages: median ${result.stepMedianMs} ms, longest ${result.stepMaxMs} ms, ${result.stepTotalMs} ms in all (${left} left)`);
  await clearOutbox(db);
  return result;
}

export function retentionReport(r) {
  const rows = [
    [`retention: ${r.deliveries} prunable deliveries, one transaction (the old nightly job)`, `${r.wholeMs} ms`, '', ''],
    [`retention: the same in steps of ${r.pagesPerStep} pages (the job every minute)`,
      `${r.steps} steps, longest ${r.stepMaxMs} ms (median ${r.stepMedianMs}), ${r.stepTotalMs} ms in all`, '', ''],
    ['retention: longest transaction, steps / one', `${r.longestRatio}x`, '', ''],
  ];
  const section = `## Retention (20261130230200)

Method. ${r.deliveries} succeeded deliveries to one endpoint, completed 31 days ago, each with
its event and one attempt (${r.deliveryPages} pages of deliveries, ${r.eventPages} of events), loaded
into an emptied outbox and vacuumed; pruned once by \`private.prune_webhook_history()\` in one
transaction, then, loaded again, by \`private.prune_webhook_history_step()\` back to back until
its sweep is at page 0 again, each step its own transaction (the pg_cron job runs one a
minute). The longest transaction is how long VACUUM is held back for every table.

${mdTable([
    ['', 'pruned', 'transactions', 'longest', 'median', 'in all'],
    ['one transaction', r.wholePruned, 1, `${r.wholeMs} ms`, '', `${r.wholeMs} ms`],
    [`steps of ${r.pagesPerStep} pages`, r.stepPruned, r.steps, `${r.stepMaxMs} ms`, `${r.stepMedianMs} ms`, `${r.stepTotalMs} ms`],
  ])}

Succeeded deliveries left after the sweep: ${r.left}.
`;
  return { rows, section };
}

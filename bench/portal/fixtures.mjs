// Fixtures of `npm run bench:portal`: one company with PORTAL_DELIVERIES deliveries (100,000
// by default) spread over 14 days, and other companies with their own rows around it, so
// every query runs against a table where most rows belong to someone else.
//
// Rows are written directly (as the superuser, like a long history would have left them):
// the dispatcher is not what this measures.

/** Creates the company, its ADMIN, endpoints, events, deliveries and attempts. */
export async function loadPortalFixtures(client, { deliveries = 100_000, otherCompanies = 20, otherDeliveries = 10_000 } = {}) {
  await client.query(`
    create or replace function pg_temp.load_company(company uuid, n integer, days integer)
    returns void language plpgsql as $$
    declare
      hooks uuid[];
      types text[] := array['PROCESS_CREATED', 'PROCESS_REVISED', 'PROCESS_DELETED', 'WEBHOOK_TEST'];
    begin
      insert into public.webhooks (company_id, trigger_type, url, description)
      select company, types[1 + (i % 3)], 'https://receiver-' || i || '.example.com/serial', 'endpoint ' || i
        from generate_series(1, 10) i;
      select array_agg(id order by created_at, id) into hooks from public.webhooks where company_id = company;

      -- One event per delivery; 1 in 50 is a test event. created_at spreads over "days"
      -- with more rows lately; many share a timestamp (as a fan-out's rows do).
      create temporary table fx on commit drop as
      select gen_random_uuid() as event_id, gen_random_uuid() as delivery_id, g,
             hooks[1 + (g % 10)] as webhook_id,
             case when g % 50 = 0 then 'WEBHOOK_TEST' else types[1 + ((g % 10) % 3)] end as trigger_type,
             date_trunc('second', now() - (days * interval '1 day') * power(random(), 2)) as created_at,
             case when g % 100 < 90 then 'succeeded' when g % 100 < 94 then 'failed'
                  when g % 100 < 96 then 'cancelled' else 'pending' end as state
        from generate_series(1, n) g;

      insert into public.webhook_events (id, company_id, trigger_type, payload, created_at)
      select event_id, company, trigger_type,
             jsonb_build_object('type', trigger_type, 'timestamp', created_at, 'company_id', company,
                                'data', jsonb_build_object('process_id', gen_random_uuid(), 'revision', g % 7 + 1,
                                                           'process', jsonb_build_object('name', 'Final assembly ' || g, 'type', 'PRODUCTION'))),
             created_at
        from fx;
      insert into public.webhook_deliveries (id, company_id, event_id, webhook_id, state, attempt_count, next_attempt_at,
                                             last_status, last_error, last_attempt_at, created_at, updated_at, completed_at)
      select delivery_id, company, event_id, webhook_id, state::public.webhook_delivery_state,
             case state when 'succeeded' then 1 when 'failed' then 8 when 'cancelled' then 2 else (g % 3) end,
             case when state = 'pending' then created_at + interval '5 minutes' end,
             case state when 'succeeded' then 200 when 'failed' then 503 when 'cancelled' then 500 else case when g % 3 > 0 then 502 end end,
             case when state in ('failed', 'cancelled') then 'HTTP 503' end,
             case when state <> 'pending' or g % 3 > 0 then created_at + interval '1 second' end,
             created_at, created_at,
             case when state <> 'pending' then created_at + interval '2 seconds' end
        from fx;
      insert into public.webhook_delivery_attempts (delivery_id, company_id, attempt_number, outcome, status, duration_ms, response_body, created_at)
      select delivery_id, company, a, (case when state = 'succeeded' then 'succeeded' else 'failed' end)::public.webhook_attempt_outcome,
             case when state = 'succeeded' then 200 else 503 end, 20 + g % 200, 'ok', created_at + interval '1 second'
        from fx, generate_series(1, case state when 'succeeded' then 1 when 'failed' then 2 when 'cancelled' then 2 else (g % 3) end) a;
    end $$;
  `);
  const company = async (name) => (await client.query('insert into public.companies (name) values ($1) returning id', [name])).rows[0].id;
  const others = [];
  for (let i = 0; i < otherCompanies; i++) {
    const id = await company(`other ${i}`);
    others.push(id);
    await client.query('select pg_temp.load_company($1, $2, 14)', [id, otherDeliveries]);
  }
  const target = await company('portal bench');
  await client.query('select pg_temp.load_company($1, $2, 14)', [target, deliveries]);
  const ordered = await orderOneEndpoint(client, target);
  const { rows: [admin] } = await client.query(
    `with u as (insert into auth.users (id, email) values (gen_random_uuid(), 'bench-admin@portal.test') returning id)
     insert into public.users (supabase_uid, company_id, email, role) select id, $1, 'bench-admin@portal.test', 'ADMIN' from u
     returning supabase_uid as id`,
    [target],
  );
  await client.query('vacuum analyze public.webhook_events, public.webhook_deliveries, public.webhook_delivery_attempts, public.webhooks');
  return { companyId: target, adminId: admin.id, otherCompanyIds: others, orderedWebhookId: ordered };
}

/**
 * One endpoint of the company is ordered and failing, as ordered delivery and the endpoint
 * scheduling leave one: its pending deliveries belong to 5 processes (ordering keys), the
 * oldest of each key is the head (due, retried), the others are held behind it
 * ('infinity'), so the log's waiting_for column has real work to do; its health row says
 * it has been failing for two hours.
 */
async function orderOneEndpoint(client, companyId) {
  const { rows: [hook] } = await client.query(
    `select d.webhook_id as id from public.webhook_deliveries d where d.company_id = $1 and d.state = 'pending'
      group by 1 order by count(*) desc, 1 limit 1`, [companyId]);
  await client.query(`update public.webhooks set delivery_order = 'ordered' where id = $1`, [hook.id]);
  await client.query(`
    with keyed as (
      select d.id, 'process-' || (row_number() over (order by d.created_at, d.id) % 5) as key,
             nextval('private.webhook_delivery_ordering_seq') as seq
        from public.webhook_deliveries d
       where d.webhook_id = $1 and d.state = 'pending'
    ), ranked as (
      select k.*, row_number() over (partition by k.key order by k.seq) as place from keyed k
    )
    update public.webhook_deliveries d
       set ordering_key = r.key, ordering_seq = r.seq,
           next_attempt_at = case when r.place = 1 then now() + interval '5 minutes' else 'infinity' end
      from ranked r
     where d.id = r.id`, [hook.id]);
  await client.query(`
    update private.webhook_endpoints e
       set consecutive_failures = 3, last_status = 502, last_error = 'HTTP 502',
           failing_since = now() - interval '2 hours 10 minutes',
           last_attempt_at = now() - interval '4 minutes'
     where e.webhook_id = $1`, [hook.id]);
  return hook.id;
}

-- webhook_deliveries_per_hour() and webhook_endpoint_stats(): figures for the portal's
-- charts and endpoint list. They read through RLS, so each caller counts exactly the
-- deliveries they could select: an ADMIN their company's, everybody else nothing.
begin;
select plan(22);

select * from tests.create_cast(with_webhooks => true) \gset

-- A's first endpoint: deliveries of every outcome, in two hours, plus one outside the window.
-- B's endpoint: one delivery, which must never show up in A's figures. Times are minutes
-- before the start of the current hour, so the buckets do not depend on the clock.
create temporary table fixture (n int, state text, attempts int, status int, minutes_ago int) on commit drop;
insert into fixture values
  (1, 'succeeded', 1, 200, 150), (2, 'succeeded', 3, 204, 150), (3, 'failed', 8, 503, 150),
  (4, 'pending', 2, 502, 30), (5, 'pending', 0, null, 31), (6, 'cancelled', 1, 500, 32),
  (7, 'succeeded', 1, 200, 30 * 60), (8, 'pending', 1, null, 33), (9, 'pending', 1, 503, 34);
select private.insert_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', f.n), array[:'webhook_a1'::uuid])
  from fixture f order by f.n;
update public.webhook_deliveries d
   set state = f.state::public.webhook_delivery_state, attempt_count = f.attempts, last_status = f.status,
       last_attempt_at = case when f.attempts > 0 then date_trunc('hour', now()) - make_interval(mins => f.minutes_ago - 1) end,
       next_attempt_at = case when f.state = 'pending' then now() + interval '1 minute' end,
       completed_at = case when f.state <> 'pending' then now() end,
       created_at = date_trunc('hour', now()) - make_interval(mins => f.minutes_ago)
  from public.webhook_events e, fixture f
 where e.id = d.event_id and (e.payload -> 'data' ->> 'n')::int = f.n;
-- 8 is a first attempt in flight (claimed: attempt_count already counts it), 9 a first
-- attempt that failed and waits for its retry.
update public.webhook_deliveries d
   set lease_owner = 'worker-1', lease_expires_at = now() + interval '1 minute'
  from public.webhook_events e
 where e.id = d.event_id and e.payload -> 'data' ->> 'n' = '8';
select private.insert_webhook_event(:'company_b', 'PROCESS_CREATED', '{}', array[:'webhook_b'::uuid]);
update public.webhook_deliveries set state = 'succeeded', attempt_count = 1, last_status = 200, last_attempt_at = now(),
       next_attempt_at = null, completed_at = now()
 where webhook_id = :'webhook_b';

-- Per hour ---------------------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select results_eq(
  $$select webhook_id, succeeded, failed, retrying, pending, cancelled from public.webhook_deliveries_per_hour() order by hour$$,
  format($$values (%L::uuid, 2::bigint, 1::bigint, 0::bigint, 0::bigint, 0::bigint),
                  (%L::uuid, 0::bigint, 0::bigint, 2::bigint, 2::bigint, 1::bigint)$$, :'webhook_a1', :'webhook_a1'),
  'per hour: two hours of the last 24, each delivery under its outcome (retrying = pending after a failed attempt; a first attempt in flight is pending)'
);
select ok(
  (select bool_and(hour = date_trunc('hour', hour) and extract(minute from hour at time zone 'UTC') = 0)
     from public.webhook_deliveries_per_hour()),
  'hours are whole UTC hours'
);
select is(
  (select sum(succeeded + failed + retrying + pending + cancelled)::int from public.webhook_deliveries_per_hour(now() - interval '2 days')),
  9, 'a wider window reaches the older delivery'
);
select is(
  (select count(*)::int from public.webhook_deliveries_per_hour(now() - interval '1 day', :'webhook_a2')),
  0, 'for_webhook_id narrows it to one endpoint (A''s second has none)'
);
select is(
  (select count(*)::int from public.webhook_deliveries_per_hour(now() - interval '1 day', :'webhook_b')),
  0, 'asking for B''s endpoint by id gives A''s ADMIN nothing'
);
select throws_ok('select * from public.webhook_deliveries_per_hour(null)',
  '22004', 'since is required (the start of the window)', 'a null since is refused');

-- Per endpoint -----------------------------------------------------------------------------
select set_eq(
  $$select webhook_id, deliveries, succeeded, failed, retrying, pending, cancelled, success_rate, last_status
      from public.webhook_endpoint_stats()$$,
  format($$values (%L::uuid, 8::bigint, 2::bigint, 1::bigint, 2::bigint, 2::bigint, 1::bigint, 0.4000::numeric, 502),
                  (%L::uuid, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, null::numeric, null::integer)$$,
         :'webhook_a1', :'webhook_a2'),
  'per endpoint: every endpoint of the company, counts of the last 24 h, success rate of the attempted, last status'
);
select is(
  (select last_attempt_at from public.webhook_endpoint_stats() where webhook_id = :'webhook_a1'),
  date_trunc('hour', now()) - interval '29 minutes',
  'the last status and time are those of the newest attempted delivery'
);
select is(
  (select success_rate from public.webhook_endpoint_stats(now() - interval '2 days') where webhook_id = :'webhook_a1'),
  0.5000::numeric, 'the window moves the rate (3 of 6 attempted succeeded since 2 days)'
);

-- Who sees what ----------------------------------------------------------------------------
select tests.authenticate_as(:'admin_b');
select results_eq(
  $$select webhook_id, deliveries from public.webhook_endpoint_stats()$$,
  format($$values (%L::uuid, 1::bigint)$$, :'webhook_b'),
  'B''s ADMIN sees B''s endpoint and nothing of A'
);
select is((select count(*)::int from public.webhook_deliveries_per_hour() where webhook_id <> :'webhook_b'), 0,
  'B''s ADMIN gets no hour of A');

select tests.authenticate_as(:'member_a');
select is((select count(*)::int from public.webhook_endpoint_stats()), 0, 'a MEMBER gets no endpoint stats');
select is((select count(*)::int from public.webhook_deliveries_per_hour()), 0, 'a MEMBER gets no hours');
select tests.authenticate_as(:'operator_a');
select is((select count(*)::int from public.webhook_endpoint_stats()), 0, 'an OPERATOR gets no endpoint stats');
select tests.authenticate_as(:'inactive_admin_a');
select is((select count(*)::int from public.webhook_endpoint_stats()), 0, 'an inactive ADMIN gets no endpoint stats');
select is((select count(*)::int from public.webhook_deliveries_per_hour()), 0, 'an inactive ADMIN gets no hours');
select tests.authenticate_as(:'no_profile');
select is((select count(*)::int from public.webhook_endpoint_stats()), 0, 'a user without a profile gets nothing');

select tests.authenticate_as_anon();
select throws_ok('select * from public.webhook_endpoint_stats()',
  '42501', 'permission denied for function webhook_endpoint_stats', 'anon cannot call webhook_endpoint_stats');
select throws_ok('select * from public.webhook_deliveries_per_hour()',
  '42501', 'permission denied for function webhook_deliveries_per_hour', 'anon cannot call webhook_deliveries_per_hour');
select tests.clear_authentication();

-- A deleted endpoint's deliveries stay in the log under its id (20261130120000), and out
-- of the figures, as when a delete cleared the id.
select private.insert_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 99}', array[:'webhook_a2'::uuid]);
delete from public.webhooks where id = :'webhook_a2';
select tests.authenticate_as(:'admin_a');
select is((select count(*) from public.webhook_deliveries_per_hour() where webhook_id = :'webhook_a2'), 0::bigint,
  'per hour: nothing for a deleted endpoint, whose deliveries keep its id');
select tests.clear_authentication();

-- They must stay invoker functions: definer rights would skip the RLS they rely on.
select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('webhook_endpoint_stats', 'webhook_deliveries_per_hour') and not p.prosecdef),
  array['webhook_deliveries_per_hour', 'webhook_endpoint_stats'],
  'both are security invoker'
);
select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('webhook_endpoint_stats', 'webhook_deliveries_per_hour') and p.provolatile = 's'),
  array['webhook_deliveries_per_hour', 'webhook_endpoint_stats'],
  'both are stable (read-only, usable with GET)'
);

select * from finish();
rollback;

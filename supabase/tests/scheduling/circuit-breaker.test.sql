-- The circuit breaker of an endpoint (private.webhook_endpoints, knobs in
-- private.webhook_settings): consecutive failures that got no answer, timed out or got a
-- 5xx count towards circuit_failure_threshold; any other answer (a 4xx) resets the run, a
-- success too. At the threshold the circuit opens: the endpoint's other deliveries wait
-- without spending attempts, and one probe at a time is sent, the first
-- circuit_probe_min_seconds after the opening; each failed probe doubles the wait, up to
-- circuit_probe_max_seconds (requests already in flight when it opened are not probes and
-- do not move the next probe). A success closes it and the backlog flows again. The
-- failing streak (failing_since) runs from the first failure to the first success through
-- all of this, so the auto-disable after disable_after stays truthful; re-enabling an
-- endpoint gives it a fresh start.
begin;
select plan(41);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://flaky.example.com/hook') as hook \gset

-- Knobs --------------------------------------------------------------------------------------
select throws_ok($$update private.webhook_settings set circuit_failure_threshold = 0$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_circuit_failure_threshold_range"',
  'a threshold below 1 is refused, naming the rule');
select throws_ok($$update private.webhook_settings set circuit_probe_min_seconds = 0$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_circuit_probe_min_range"',
  'a probe interval below 1 s is refused');
select throws_ok($$update private.webhook_settings set circuit_probe_min_seconds = 60, circuit_probe_max_seconds = 30$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_circuit_probe_order"',
  'a maximum probe interval below the minimum is refused');
update private.webhook_settings
   set circuit_failure_threshold = 3, circuit_probe_min_seconds = 10, circuit_probe_max_seconds = 40;

-- The endpoint's health, as ADMINs read it, and its delivery counters.
create function pg_temp.health(hook uuid)
returns table (state text, consecutive_failures integer, failing_since timestamptz, circuit_opened_at timestamptz,
               next_probe_at timestamptz, last_status integer)
language sql as $$
  select h.state, h.consecutive_failures, h.failing_since, h.circuit_opened_at, h.next_probe_at, h.last_status
    from public.webhook_endpoint_health h where h.webhook_id = hook
$$;
-- One result for one claimed delivery: failed with this status (null: no answer), retried in 5 s.
create function pg_temp.failure(delivery_id uuid, attempt integer, status integer)
returns jsonb language sql as $$
  select jsonb_build_object('delivery_id', delivery_id, 'attempt_number', attempt, 'outcome', 'failed',
                            'status', status, 'duration_ms', 1,
                            'error', coalesce('HTTP ' || status, 'timed out after 15000 ms'),
                            'next_attempt_at', now() + interval '5 seconds')
$$;
select tests.create_claims_table();

select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n))) from generate_series(1, 8) n \gset
insert into claims select 'all', * from private.claim_due_deliveries('worker-1', 50, 60);
select array_agg(delivery_id order by (payload -> 'data' ->> 'n')::integer) as d from claims where call = 'all' \gset

select results_eq(format('select * from pg_temp.health(%L)', :'hook'),
  $$values ('healthy'::text, 0, null::timestamptz, null::timestamptz, null::timestamptz, null::integer)$$,
  'a new endpoint is healthy');

-- Counting the run -----------------------------------------------------------------------------
select is(private.record_delivery_results('worker-1', jsonb_build_array(
    pg_temp.failure((:'d'::uuid[])[1], 1, 500), pg_temp.failure((:'d'::uuid[])[2], 1, null)), interval '5 days'),
  2, 'a 500 and a timeout');
select results_eq(format('select * from pg_temp.health(%L)', :'hook'),
  $$values ('failing'::text, 2, now(), null::timestamptz, null::timestamptz, null::integer)$$,
  'two consecutive failures: failing since now, the circuit still closed (threshold 3)');
select is(private.record_delivery_results('worker-1', jsonb_build_array(
    jsonb_build_object('delivery_id', (:'d'::uuid[])[4], 'attempt_number', 1, 'outcome', 'blocked', 'duration_ms', 1,
                       'error', 'blocked: resolves to a private address', 'next_attempt_at', now() + interval '5 seconds')), interval '5 days'),
  1, 'an attempt blocked by the SSRF guard');
select is((select consecutive_failures from private.webhook_endpoints where webhook_id = :'hook'), 2,
  'a blocked attempt (never sent) neither counts towards the run nor resets it');
select tests.time_passes('1 second');
select is(private.record_delivery_results('worker-1', jsonb_build_array(pg_temp.failure((:'d'::uuid[])[3], 1, 404)), interval '5 days'),
  1, 'a 404');
select results_eq(format('select * from pg_temp.health(%L)', :'hook'),
  $$values ('failing'::text, 0, now() - interval '1 second', null::timestamptz, null::timestamptz, 404)$$,
  'an answer that is not a 5xx resets the run; the endpoint is still failing, since the first failure');

-- Opening ------------------------------------------------------------------------------------
select tests.time_passes('1 second');
select is(private.record_delivery_results('worker-1', jsonb_build_array(
    pg_temp.failure((:'d'::uuid[])[5], 1, 502), pg_temp.failure((:'d'::uuid[])[6], 1, null), pg_temp.failure((:'d'::uuid[])[7], 1, 503)), interval '5 days'),
  3, 'three more failures without an answer that counts');
select results_eq(format('select * from pg_temp.health(%L)', :'hook'),
  $$values ('circuit_open'::text, 3, now() - interval '2 seconds', now(), now() + interval '10 seconds', 503)$$,
  'at the threshold the circuit opens; the first probe is due circuit_probe_min_seconds later');
select is(private.record_delivery_results('worker-1', jsonb_build_array(pg_temp.failure((:'d'::uuid[])[8], 1, 500)), interval '5 days'),
  1, 'a request that was already in flight when the circuit opened fails too');
select results_eq(
  format($$select consecutive_failures, probe_interval_seconds, next_probe_at from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (4, 10, now() + interval '10 seconds')$$,
  'it counts in the run, but it is not a probe: the next probe does not move');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '10 seconds',
  'the endpoint is next looked at when the probe is due');

-- Held, not attempted --------------------------------------------------------------------------
select tests.time_passes('5 seconds');
select is((select count(*)::integer from public.webhook_deliveries where webhook_id = :'hook' and next_attempt_at <= now()), 8,
  '5 s later all 8 deliveries are due for their retry');
update private.webhook_endpoints set ready_at = now() where webhook_id = :'hook';  -- (looked at anyway)
select is((select count(*)::integer from private.claim_due_deliveries('worker-2', 50, 60)), 0,
  'but the circuit is open and the probe not due yet: nothing is claimed');

-- Probing ------------------------------------------------------------------------------------
select tests.time_passes('5 seconds');
insert into claims select 'probe-1', * from private.claim_due_deliveries('worker-2', 50, 60);
select results_eq($$select delivery_id, attempt_number from claims where call = 'probe-1'$$,
  format($$values (%L::uuid, 2)$$, (:'d'::uuid[])[1]),
  'when the probe is due, one delivery is claimed (the oldest due), as its next attempt');
select is((select count(*)::integer from private.claim_due_deliveries('worker-3', 50, 60)), 0,
  'one probe at a time: nothing else while it is in flight');
insert into private.webhook_endpoint_signals (webhook_id) values (:'hook');  -- new work announced: the endpoint is looked at
select is((select count(*)::integer from private.claim_due_deliveries('worker-3', 50, 60)), 0,
  'not even when a claim looks at the endpoint while the probe is in flight');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '60 seconds',
  'the endpoint is next looked at when the probe''s lease runs out');

select is(private.record_delivery_results('worker-2', jsonb_build_array(pg_temp.failure((:'d'::uuid[])[1], 2, 500)), interval '5 days'),
  1, 'the probe fails');
select results_eq(
  format($$select consecutive_failures, probe_interval_seconds, next_probe_at from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (5, 20, now() + interval '20 seconds')$$,
  'a failed probe doubles the wait before the next one (10 s to 20 s)');

select tests.time_passes('20 seconds');
insert into claims select 'probe-2', * from private.claim_due_deliveries('worker-2', 50, 60);
select is((select count(*)::integer from claims where call = 'probe-2'), 1, 'the second probe, 20 s later');
select private.record_delivery_results('worker-2', (select jsonb_agg(pg_temp.failure(delivery_id, attempt_number, null)) from claims where call = 'probe-2'), interval '5 days') \gset
select results_eq(
  format($$select probe_interval_seconds, next_probe_at from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (40, now() + interval '40 seconds')$$,
  'fails (no answer): 40 s');
select tests.time_passes('40 seconds');
insert into claims select 'probe-3', * from private.claim_due_deliveries('worker-2', 50, 60);
select private.record_delivery_results('worker-2', (select jsonb_agg(pg_temp.failure(delivery_id, attempt_number, 503)) from claims where call = 'probe-3'), interval '5 days') \gset
select results_eq(
  format($$select probe_interval_seconds, next_probe_at from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (40, now() + interval '40 seconds')$$,
  'and no longer than circuit_probe_max_seconds (40 s)');

select results_eq(
  format($$select array_agg(attempt_count order by (e.payload -> 'data' ->> 'n')::integer)
             from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id where d.webhook_id = %L$$, :'hook'),
  (select format($$values (array[%s])$$, string_agg(case when c.delivery_id in (select delivery_id from claims where call like 'probe-%') then (select count(*) from claims p where p.delivery_id = c.delivery_id)::text else '1' end, ', ' order by (c.payload -> 'data' ->> 'n')::integer))
     from claims c where c.call = 'all'),
  'the held deliveries spent no attempts: only the probes were attempted again');
select is(
  (select count(*)::integer from public.webhook_delivery_attempts a join public.webhook_deliveries d on d.id = a.delivery_id where d.webhook_id = :'hook'),
  11, 'the attempt log has the 8 first attempts and the 3 probes');
select results_eq(format('select state, failing_since from pg_temp.health(%L)', :'hook'),
  $$values ('circuit_open'::text, now() - interval '72 seconds')$$,
  'the failing streak still runs from the first failure');

-- Closing ------------------------------------------------------------------------------------
select tests.time_passes('40 seconds');
insert into claims select 'probe-4', * from private.claim_due_deliveries('worker-2', 50, 60);
select private.record_delivery_results('worker-2', (select jsonb_agg(jsonb_build_object(
         'delivery_id', delivery_id, 'attempt_number', attempt_number, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
         from claims where call = 'probe-4'), interval '5 days') \gset
select results_eq(format('select * from pg_temp.health(%L)', :'hook'),
  $$values ('healthy'::text, 0, null::timestamptz, null::timestamptz, null::timestamptz, 200)$$,
  'a successful probe closes the circuit and ends the failing streak');
select results_eq(
  format($$select probe_interval_seconds, last_success_at, ready_at,
                  (select min(d.next_attempt_at) from public.webhook_deliveries d where d.webhook_id = e.webhook_id and d.state = 'pending') < now()
             from private.webhook_endpoints e where webhook_id = %L$$, :'hook'),
  $$values (null::integer, now(), now(), true)$$,
  'no probe interval any more; its held deliveries are due, and it is ready now, behind whoever waited longer (20261201090400)');
insert into claims select 'flowing', * from private.claim_due_deliveries('worker-2', 50, 60);
select is((select count(*)::integer from claims where call = 'flowing'), 7,
  'the held backlog flows again at the endpoint''s cap (7 left, cap 10)');

-- A success in the middle of a run ends it -------------------------------------------------------
select tests.time_passes('61 seconds');
delete from claims where call = 'flowing';
insert into claims select 'flowing', * from private.claim_due_deliveries('worker-2', 50, 60);
select private.record_delivery_results('worker-2', (select jsonb_agg(case when (payload -> 'data' ->> 'n')::integer < 8
           then pg_temp.failure(delivery_id, attempt_number, 500)
           else jsonb_build_object('delivery_id', delivery_id, 'attempt_number', attempt_number, 'outcome', 'succeeded', 'status', 204, 'duration_ms', 1) end)
         from claims where call = 'flowing'), interval '5 days') \gset
select results_eq(format('select state, consecutive_failures, failing_since from pg_temp.health(%L)', :'hook'),
  $$values ('healthy'::text, 0, null::timestamptz)$$,
  'a batch with a success among its failures leaves the endpoint healthy (it answers)');

-- The 5-day auto-disable, circuit open ------------------------------------------------------------
select tests.time_passes('5 seconds');
delete from claims where call = 'flowing';
insert into claims select 'flowing', * from private.claim_due_deliveries('worker-2', 50, 60);
select private.record_delivery_results('worker-2', (select jsonb_agg(pg_temp.failure(delivery_id, attempt_number, 500)) from claims where call = 'flowing'), interval '5 days') \gset
select results_eq(format('select state, consecutive_failures, failing_since from pg_temp.health(%L)', :'hook'),
  $$values ('circuit_open'::text, 6, now())$$,
  'six failures in one batch open the circuit again');
select tests.time_passes('5 days 10 seconds');
insert into claims select 'probe-5', * from private.claim_due_deliveries('worker-2', 50, 60);
select is((select count(*)::integer from claims where call = 'probe-5'), 1, 'five days later, one probe');
select private.record_delivery_results('worker-2', (select jsonb_agg(pg_temp.failure(delivery_id, attempt_number, 500)) from claims where call = 'probe-5'), interval '5 days') \gset
select results_eq(
  format($$select is_active, disabled_reason from public.webhooks where id = %L$$, :'hook'),
  format($$values (false, %L::text)$$,
         format('failing continuously since %s (longer than %s)', now() - interval '5 days 10 seconds', interval '5 days')),
  'it fails: failing longer than disable_after, the endpoint is disabled, saying since when');
select results_eq(format('select state, consecutive_failures, circuit_opened_at is not null from pg_temp.health(%L)', :'hook'),
  $$values ('disabled'::text, 7, true)$$,
  'its state is disabled (its health as it was)');
select is((select count(*)::integer from public.webhook_deliveries where webhook_id = :'hook' and state = 'pending'), 0,
  'and its pending deliveries are cancelled');

-- Re-enabling ------------------------------------------------------------------------------------
update public.webhooks set is_active = true where id = :'hook';
select results_eq(format('select state, consecutive_failures, failing_since, circuit_opened_at, next_probe_at from pg_temp.health(%L)', :'hook'),
  $$values ('healthy'::text, 0, null::timestamptz, null::timestamptz, null::timestamptz)$$,
  're-enabling gives the endpoint a fresh start: healthy, no run, circuit closed');
select is((select probe_interval_seconds from private.webhook_endpoints where webhook_id = :'hook'), null,
  'and no probe interval');
select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{"n": 9}') \gset
select is((select count(*)::integer from private.claim_due_deliveries('worker-2', 50, 60)), 1,
  'its next delivery is claimed at once');

update private.webhook_settings
   set circuit_failure_threshold = 10, circuit_probe_min_seconds = 10, circuit_probe_max_seconds = 600;
select * from finish();
rollback;

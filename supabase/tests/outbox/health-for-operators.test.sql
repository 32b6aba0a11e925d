-- public.webhook_health (private.webhook_health()): the operator's one row. The service
-- role reads it; ADMINs and anon cannot. In a scenario built with the outbox's own
-- functions (enqueue, claim, record, disable, delete), every figure is what the README
-- promises: the lag is the age of the oldest due delivery of an active endpoint with a
-- closed circuit, found whether its endpoint is ready, at its cap (leases) or only
-- signalled; held, parked and scheduled deliveries are not lag, nor those an endpoint's
-- ADMIN holds back with its own rate or cap; counts stop at 10,000;
-- failed pg_net wake-ups are counted where pg_net exists; it says whether a worker listens.
--
-- Inside one transaction now() does not move: ages are made by moving next_attempt_at
-- into the past, as the superuser. pg_net does not exist on plain Postgres, so the test
-- stands in a net._http_response with pg_net's columns (inside the test transaction only).
begin;
select plan(75);

create temporary table health as select * from public.webhook_health where false;
create function pg_temp.snapshot() returns void language sql as $$
  truncate pg_temp.health;
  insert into pg_temp.health select * from public.webhook_health;
$$;
create function pg_temp.deliver_to(company uuid, webhook uuid) returns uuid language sql as $$
  select private.insert_webhook_event(company, 'PROCESS_REVISED', '{"bench": "health"}', array[webhook])
$$;

-- Nothing at all --------------------------------------------------------------------------
select pg_temp.snapshot();
select is((select lag_seconds from health), 0::double precision, 'an empty outbox has no lag');
select is((select oldest_due_at from health), null, 'and no oldest due delivery');
select is((select due_deliveries from health), 0::bigint, 'and nothing due');
select is((select wakeup_failures from health), null::bigint,
  'without pg_net, wake-up failures are null (not applicable), not 0');

-- The scenario ------------------------------------------------------------------------------
update private.webhook_settings set endpoint_concurrency = 1, circuit_failure_threshold = 1;
select tests.create_company('Company A') as company_a \gset
select tests.create_company('Company B') as company_b \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://capped.a.example/hook') as capped \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://open.a.example/hook') as open \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://later.a.example/hook') as later \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://ready.a.example/hook') as ready \gset
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://new.b.example/hook') as fresh \gset
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://ordered.b.example/hook') as ordered \gset
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://off.b.example/hook', false) as off \gset
update public.webhooks set delivery_order = 'ordered' where id = :'ordered';

-- capped: two deliveries, the cap is 1, one is in flight: the other is due and waits for a
-- slot (its ready_at is the lease's end), 200 s old.
select pg_temp.deliver_to(:'company_a', :'capped');
select pg_temp.deliver_to(:'company_a', :'capped');
select is((select count(*)::integer from private.claim_due_deliveries('health-test', 1, 60)), 1, 'capped: one delivery leased');
update public.webhook_deliveries set next_attempt_at = now() - interval '200 seconds'
 where webhook_id = :'capped' and lease_owner is null;

-- later: answered 400, retried in an hour: failing, scheduled, not due.
select pg_temp.deliver_to(:'company_a', :'later');
select delivery_id as later_attempt, attempt_number as later_attempt_number
  from private.claim_due_deliveries('health-test', 1, 60) \gset
select is(private.record_delivery_results('health-test', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'later_attempt', 'attempt_number', :later_attempt_number, 'outcome', 'failed',
    'status', 400, 'duration_ms', 5, 'error', 'HTTP 400', 'next_attempt_at', now() + interval '1 hour')),
  interval '5 days'), 1, 'later: a 400 recorded, retry in an hour');

-- open: a 503 opens its circuit (threshold 1); a delivery 300 s old and a new one (with its
-- signal) are held by the circuit, not lag.
select pg_temp.deliver_to(:'company_a', :'open');
select pg_temp.deliver_to(:'company_a', :'open');
select delivery_id as open_attempt, attempt_number as open_attempt_number
  from private.claim_due_deliveries('health-test', 1, 60) \gset
select is(private.record_delivery_results('health-test', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'open_attempt', 'attempt_number', :open_attempt_number, 'outcome', 'failed',
    'status', 503, 'duration_ms', 5, 'error', 'HTTP 503', 'next_attempt_at', now() + interval '1 minute')),
  interval '5 days'), 1, 'open: a 503 recorded');
update public.webhook_deliveries set next_attempt_at = now() - interval '300 seconds'
 where webhook_id = :'open' and id <> :'open_attempt';
select pg_temp.deliver_to(:'company_a', :'open');

-- ready: two deliveries 250 s and 30 s old, scheduled by the outbox's own rule (ready_at),
-- their signals consumed as a claim would.
select pg_temp.deliver_to(:'company_a', :'ready');
select pg_temp.deliver_to(:'company_a', :'ready');
update public.webhook_deliveries set next_attempt_at = now() - interval '250 seconds'
 where id = (select id from public.webhook_deliveries where webhook_id = :'ready' order by id limit 1);
update public.webhook_deliveries set next_attempt_at = now() - interval '30 seconds'
 where webhook_id = :'ready' and next_attempt_at = now();
delete from private.webhook_endpoint_signals where webhook_id = :'ready';
update private.webhook_endpoints e set ready_at = private.endpoint_ready_at(e, false) where e.webhook_id = :'ready';

-- fresh: one delivery 100 s old, known only by its signal (no claim has seen it).
select pg_temp.deliver_to(:'company_b', :'fresh');
update public.webhook_deliveries set next_attempt_at = now() - interval '100 seconds' where webhook_id = :'fresh';

-- ordered: its head waits on a retry in an hour, the next one is parked behind it.
select pg_temp.deliver_to(:'company_b', :'ordered') as ordered_head \gset
select pg_temp.deliver_to(:'company_b', :'ordered') as ordered_next \gset
update public.webhook_deliveries d
   set ordering_key = 'process-1',
       ordering_seq = case when d.event_id = :'ordered_head' then 1 else 2 end,
       attempt_count = case when d.event_id = :'ordered_head' then 1 else 0 end,
       next_attempt_at = case when d.event_id = :'ordered_head' then now() + interval '1 hour' else 'infinity' end
 where d.webhook_id = :'ordered';

-- The oldest signal (open's) is 45 s old.
update private.webhook_endpoint_signals set created_at = now() - interval '45 seconds'
 where id = (select min(id) from private.webhook_endpoint_signals);
analyze public.webhook_deliveries;

select is((select state from public.webhook_endpoint_health where webhook_id = :'open'), 'circuit_open',
  'the scenario has an open circuit');

-- Figures -------------------------------------------------------------------------------------
select pg_temp.snapshot();
select is((select lag_seconds from health), 250::double precision,
  'lag: the oldest due delivery is 250 s old (a ready endpoint); the 300 s one behind an open circuit is not lag');
select is((select oldest_due_at from health), now() - interval '250 seconds', 'oldest_due_at is its next_attempt_at');
select is((select oldest_due_webhook_id from health), :'ready'::uuid, 'and names its endpoint');
select is((select endpoints_with_due_work from health), 3::bigint, 'three endpoints have due work: ready, capped, fresh');
select is((select due_deliveries from health), 4::bigint,
  'four due deliveries: not the held, parked, scheduled or in-flight ones');
select is((select in_flight_deliveries from health), 1::bigint, 'one request in flight (capped''s lease)');
select is((select pending_deliveries_estimate from health), 11::bigint,
  'pending estimate after ANALYZE: the 11 pending rows');
select is((select scheduled_deliveries_estimate from health), 6::bigint,
  'scheduled: pending that are neither due nor in flight (3 held by the circuit, 1 retry, 2 ordered)');
select is((select array[endpoints_healthy, endpoints_failing, endpoints_circuit_open, endpoints_disabled] from health),
  array[4, 1, 1, 1]::bigint[], 'endpoints by state: 4 healthy, 1 failing, 1 circuit open, 1 disabled');
select is((select signals from health), 4::bigint, 'four signals no claim has consumed (open, fresh, ordered x2)');
select is((select oldest_signal_age_seconds from health), 45::double precision, 'the oldest signal is 45 s old');
select is((select checked_at from health), now(), 'checked_at is the time of the reading');

-- A disabled endpoint's deliveries are cancelled: the next oldest is at the capped endpoint,
-- found through its lease (its ready_at is in the future).
update public.webhooks set is_active = false where id = :'ready';
select pg_temp.snapshot();
select is((select lag_seconds from health), 200::double precision, 'ready disabled: the lag is capped''s 200 s');
select is((select oldest_due_webhook_id from health), :'capped'::uuid, 'an endpoint at its cap is still seen');
select is((select due_deliveries from health), 2::bigint, 'two due deliveries left');
select is((select endpoints_disabled from health), 2::bigint, 'two endpoints disabled');

-- The capped endpoint deleted: what is left is only signalled.
delete from public.webhooks where id = :'capped';
select pg_temp.snapshot();
select is((select lag_seconds from health), 100::double precision, 'capped deleted: the lag is fresh''s 100 s, seen by its signal');
select is((select oldest_due_webhook_id from health), :'fresh'::uuid, 'fresh is the oldest');
select is((select in_flight_deliveries from health), 0::bigint, 'nothing in flight');

-- An endpoint its ADMIN holds back (its own rate, its own cap) is not late: the tenant chose
-- that wait. The deployment's cap is lag (capped, above). Here the deployment allows 10 at
-- once (endpoints start at 10).
update private.webhook_settings set endpoint_concurrency = 10;
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://limited.b.example/hook') as limited \gset
select pg_temp.deliver_to(:'company_b', :'limited');
select pg_temp.deliver_to(:'company_b', :'limited');
update public.webhook_deliveries set next_attempt_at = now() - interval '500 seconds' where webhook_id = :'limited';
delete from private.webhook_endpoint_signals where webhook_id = :'limited';  -- as a claim would
update private.webhook_endpoints e set ready_at = private.endpoint_ready_at(e, false) where e.webhook_id = :'limited';
select pg_temp.snapshot();
select is((select lag_seconds from health), 500::double precision, 'limited: two deliveries 500 s old, the lag');
update public.webhooks set max_requests_per_second = 1 where id = :'limited';
update private.webhook_endpoints set rate_tokens = 0.5, rate_updated_at = now() where webhook_id = :'limited';
select pg_temp.snapshot();
select is((select array[lag_seconds, due_deliveries] from health), array[100, 1]::double precision[],
  'its ADMIN limits it to 1 a second and its bucket holds half a request: its backlog is not lag, nor due');
update public.webhooks set max_requests_per_second = 100 where id = :'limited';
update private.webhook_endpoints set rate_tokens = 5, rate_updated_at = now() where webhook_id = :'limited';
insert into private.webhook_endpoint_signals (webhook_id) values (:'limited');  -- a new delivery's signal
select pg_temp.snapshot();
select is((select lag_seconds from health), 100::double precision,
  'at 100 a second with half its bucket (5 of the 10 a claim could take), signalled: it waits for the rest, not lag either');
delete from private.webhook_endpoint_signals where webhook_id = :'limited';
update public.webhooks set max_requests_per_second = null, max_concurrent_requests = 1 where id = :'limited';
update public.webhook_deliveries
   set lease_owner = 'health-test', lease_expires_at = now() + interval '60 seconds', next_attempt_at = now() + interval '60 seconds'
 where id = (select id from public.webhook_deliveries where webhook_id = :'limited' limit 1);
select pg_temp.snapshot();
select is((select lag_seconds from health), 100::double precision,
  'capped at 1 by its ADMIN, one request in flight: the other waits for it, not lag');
update public.webhooks set max_concurrent_requests = 2 where id = :'limited';
select pg_temp.snapshot();
select is((select lag_seconds from health), 500::double precision, 'with room under its own cap, it is lag again');
update private.webhook_settings set endpoint_concurrency = 1;  -- as for the rest of the test
update public.webhooks set max_concurrent_requests = 1 where id = :'limited';
select pg_temp.snapshot();
select is((select lag_seconds from health), 500::double precision,
  'its own cap and the deployment''s both 1: the deployment''s would hold it anyway, so it is lag');
delete from public.webhooks where id = :'limited';
select pg_temp.snapshot();
select is((select lag_seconds from health), 100::double precision, 'deleted: fresh''s 100 s again');

-- Counts stop at 10,000 (here 10,006 due over two endpoints, 10,005 signals).
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://new2.b.example/hook') as fresh2 \gset
insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at)
select :'company_b', e.id, w.id, now() - interval '1 second'
  from public.webhook_events e, (values (:'fresh'::uuid), (:'fresh2'::uuid)) w(id), generate_series(1, 5000 + (w.id = :'fresh')::int * 5)
 where e.id = (select event_id from public.webhook_deliveries where webhook_id = :'fresh' limit 1);
select is((select count(*) from public.webhook_deliveries where state = 'pending' and next_attempt_at <= now()
            and webhook_id in (:'fresh', :'fresh2')), 10006::bigint, 'the scenario: 10,006 due deliveries');
insert into private.webhook_endpoint_signals (webhook_id) select :'fresh2' from generate_series(1, 10000);
select pg_temp.snapshot();
select is((select due_deliveries from health), 10000::bigint, 'due deliveries are counted up to 10,000');
select is((select signals from health), 10000::bigint, 'signals are counted up to 10,000');
select is((select lag_seconds from health), 100::double precision, 'the lag does not depend on how many are due');

-- The dispatcher's heartbeat ----------------------------------------------------------------------
select setval('private.webhook_dispatcher_heartbeat', (extract(epoch from clock_timestamp()) * 1000)::bigint);
select pg_temp.snapshot();
select is((select dispatcher_awake from health), true, 'a fresh heartbeat: a dispatcher is awake');
select ok((select dispatcher_heartbeat_at between clock_timestamp() - interval '2 seconds' and clock_timestamp() from health),
  'dispatcher_heartbeat_at is when it last claimed');
select setval('private.webhook_dispatcher_heartbeat', 0);
select pg_temp.snapshot();
select is((select dispatcher_awake from health), false, 'heartbeat cleared: no dispatcher awake');
select is((select dispatcher_heartbeat_at from health), null, 'and no heartbeat time');

-- A worker that listens (private.note_dispatcher_listening) ------------------------------------------
select setval('private.webhook_listener_heartbeat', 0);
select pg_temp.snapshot();
select is((select dispatcher_listening from health), false, 'no worker ever noted it listens: not listening');
select is((select listener_heartbeat_at from health), null, 'and no note time');
select private.note_dispatcher_listening();
select pg_temp.snapshot();
select is((select dispatcher_listening from health), true, 'a worker noted it listens: listening');
select ok((select listener_heartbeat_at between clock_timestamp() - interval '2 seconds' and clock_timestamp() from health),
  'listener_heartbeat_at is when it noted it');
select setval('private.webhook_listener_heartbeat', (extract(epoch from timestamptz '2026-11-29 12:00:00+00') * 1000)::bigint);
select pg_temp.snapshot();
select is((select dispatcher_listening from health), false, 'a note older than 15 s: nobody listens (writes send no NOTIFY)');
select is((select listener_heartbeat_at from health), timestamptz '2026-11-29 12:00:00+00', 'and the stale note''s time is shown');

-- Wake-ups through pg_net ---------------------------------------------------------------------------
select setval('private.webhook_wakeup_requested', (extract(epoch from timestamptz '2026-11-29 12:00:00+00') * 1000)::bigint);
select pg_temp.snapshot();
select is((select last_wakeup_requested_at from health), timestamptz '2026-11-29 12:00:00+00',
  'last_wakeup_requested_at: when the database last asked pg_net to wake the function');
select setval('private.webhook_wakeup_requested', 0);
select pg_temp.snapshot();
select is((select last_wakeup_requested_at from health), null, 'null when it never did');
create schema net;
create table net._http_response (
  id bigint, status_code integer, content_type text, headers jsonb, content text,
  timed_out boolean, error_msg text, created timestamptz not null default now());
insert into net._http_response (id, status_code, content, timed_out, error_msg, created) values
  (1, 200, '{"claimed":3}', false, null, now() - interval '1 minute'),
  (2, 401, '{"error":"no key configured"}', false, null, now() - interval '10 minutes'),
  (3, null, null, true, 'Timeout was reached', now() - interval '5 minutes'),
  (4, null, null, false, 'Couldn''t connect to server', now() - interval '20 minutes'),
  (5, 500, 'old', false, null, now() - interval '2 hours');
select pg_temp.snapshot();
select is((select wakeup_failures from health), 3::bigint,
  'wake-up failures of the last hour: a 401, a timeout, a refused connection (not the 200, not 2 h ago)');
select is((select last_wakeup_failure_at from health), now() - interval '5 minutes', 'the last one 5 minutes ago');
select is((select last_wakeup_failure from health), 'timed out: Timeout was reached', 'a timeout, with pg_net''s message');
delete from net._http_response where id = 3;
select pg_temp.snapshot();
select is((select last_wakeup_failure from health), 'HTTP 401: {"error":"no key configured"}',
  'an answer says its status and the start of its body');
delete from net._http_response where id = 2;
select pg_temp.snapshot();
select is((select last_wakeup_failure from health), 'Couldn''t connect to server', 'no answer says pg_net''s error');

-- Who may read it ----------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is((select count(*) from public.webhook_health), 1::bigint, 'the service role reads one row');
select is((select lag_seconds from public.webhook_health), 100::double precision, 'with the figures');
select tests.authenticate_as(:'admin_a');
select throws_ok($$select * from public.webhook_health$$, '42501', 'permission denied for view webhook_health',
  'an ADMIN cannot read it (it spans every tenant)');
select throws_ok($$select * from private.webhook_health()$$, '42501', 'permission denied for function webhook_health',
  'nor call the function behind it');
select tests.authenticate_as_anon();
select throws_ok($$select * from public.webhook_health$$, '42501', 'permission denied for view webhook_health',
  'anon cannot read it');
select tests.clear_authentication();

-- Cancellations left to the claims (20261130180000) ---------------------------------------------
-- A disable cancels cancel_batch_size (3 here) of its 10 pending deliveries at once and
-- leaves 7 to the claims, a chunk per claim.
select pg_temp.snapshot();
select is((select (cancellations_in_progress, oldest_cancellation_age_seconds, deliveries_being_cancelled)::text from health),
  '(0,0,0)', 'no cancellation in progress: zeros');
update private.webhook_settings set cancel_batch_size = 3;
select tests.create_company('Company C') as company_c \gset
select tests.create_webhook(:'company_c', 'PROCESS_REVISED', 'https://doomed.c.example/hook') as doomed \gset
select pg_temp.deliver_to(:'company_c', :'doomed') from generate_series(1, 10);
update public.webhooks set is_active = false, disabled_reason = 'health test' where id = :'doomed';
select pg_temp.snapshot();
select is((select cancellations_in_progress from health), 1::bigint, 'a disable with 10 pending leaves one cancellation in progress');
select is((select deliveries_being_cancelled from health), 7::bigint, 'covering the 7 it did not cancel at once');
select is((select oldest_cancellation_age_seconds from health), 0::double precision, 'requested now');
update private.webhook_cancellations set requested_at = now() - interval '90 seconds' where webhook_id = :'doomed';
select pg_temp.snapshot();
select is((select oldest_cancellation_age_seconds from health), 90::double precision, 'its age is since the disable');
select private.claim_due_deliveries('health-test', 1, 60);
select pg_temp.snapshot();
select is((select deliveries_being_cancelled from health), 4::bigint, 'a claim cancels a chunk: 4 left');
select private.claim_due_deliveries('health-test', 1, 60);
select private.claim_due_deliveries('health-test', 1, 60);
select pg_temp.snapshot();
select is((select (cancellations_in_progress, oldest_cancellation_age_seconds, deliveries_being_cancelled)::text from health),
  '(0,0,0)', 'two more claims finish it: zeros again');
select is((select count(*)::integer from public.webhook_deliveries where webhook_id = :'doomed' and state = 'cancelled'), 10,
  'and all 10 ended cancelled');
select tests.authenticate_as(:'admin_a');
select throws_ok($$select * from private.webhook_cancellations_in_progress()$$, '42501',
  'permission denied for function webhook_cancellations_in_progress', 'an ADMIN cannot call the function behind the new columns');
select tests.clear_authentication();

-- Results kept for held endpoints (20261203090100) -----------------------------------------------
-- A record keeps the results of an endpoint another transaction holds (20261203090000; the
-- holding itself needs two sessions: tests/outbox/records-never-wait-for-a-held-endpoint.test.ts).
select pg_temp.snapshot();
select is((select (results_waiting_for_held_endpoints, oldest_waiting_result_age_seconds)::text from health),
  '(0,0)', 'no result kept: zeros');
insert into private.webhook_deferred_results (webhook_id, delivery_id, attempt_number, worker, result, disable_after, deferred_at)
values (gen_random_uuid(), gen_random_uuid(), 1, 'health-test', '{}', interval '5 days', now() - interval '120 seconds'),
       (gen_random_uuid(), gen_random_uuid(), 2, 'health-test', '{}', interval '5 days', now());
select pg_temp.snapshot();
select is((select (results_waiting_for_held_endpoints, oldest_waiting_result_age_seconds)::text from health),
  '(2,120)', 'two kept, the oldest for 120 s');
delete from private.webhook_deferred_results where worker = 'health-test';
select tests.authenticate_as(:'admin_a');
select throws_ok($$select * from private.webhook_results_waiting()$$, '42501',
  'permission denied for function webhook_results_waiting', 'an ADMIN cannot call the function behind them');
select tests.clear_authentication();

-- Companies at their share (20261204090200) -----------------------------------------------------
-- Endpoints a claim turned away for their company's share (20261204090000; the turning away
-- itself: supabase/tests/scheduling/company-share-of-requests.test.sql) wait in
-- private.webhook_company_waiters; built here directly.
select pg_temp.snapshot();
select is((select (companies_at_share, endpoints_waiting_for_company_share)::text from health),
  '(0,0)', 'no endpoint waits for its company''s share: zeros');
select tests.create_webhook(:'company_b', 'PROCESS_CREATED', 'https://share-1.b.example/hook') as share_1 \gset
select tests.create_webhook(:'company_b', 'PROCESS_CREATED', 'https://share-2.b.example/hook') as share_2 \gset
select tests.create_webhook(:'company_b', 'PROCESS_DELETED', 'https://share-3.b.example/hook') as share_3 \gset
select private.insert_webhook_event(:'company_b', 'PROCESS_CREATED', '{}', array[:'share_1'::uuid, :'share_2'::uuid]) as share_event \gset
insert into private.webhook_company_waiters (webhook_id, company_id, since)
values (:'share_1', :'company_b', now()), (:'share_2', :'company_b', now()), (:'share_3', :'company_b', now());
select pg_temp.snapshot();
select is((select (companies_at_share, endpoints_waiting_for_company_share)::text from health),
  '(1,2)', 'one company, two of its endpoints waiting with deliveries due (the third has nothing due: not counted)');
select tests.authenticate_as(:'admin_a');
select throws_ok($$select * from private.webhook_company_shares()$$, '42501',
  'permission denied for function webhook_company_shares', 'an ADMIN cannot call the function behind them');
select tests.clear_authentication();

-- The claims above wrote the heartbeat and the wake-up stamp was set, which no rollback
-- undoes: leave both idle.
select setval('private.webhook_dispatcher_heartbeat', 0);
select setval('private.webhook_wakeup_requested', 0);
select setval('private.webhook_listener_heartbeat', 0);
select * from finish();
rollback;

-- Each endpoint earns its concurrency (private.webhook_endpoints.concurrency_limit): it
-- starts at private.webhook_settings.endpoint_concurrency_start, grows by one per success
-- while its window is full (what it has in flight, at any dispatcher, plus what is being
-- recorded, reaches its concurrency) up to the cap (endpoint_concurrency), and halves when a recorded batch shows a sign of
-- trouble for it (no answer, a timeout, a 5xx, or 429 Too Many Requests), never below the
-- start. Other answers (a 4xx) leave it alone. Claims take an endpoint up to it, counted
-- over its unexpired leases like the cap (endpoint-concurrency-cap.test.sql), and an
-- endpoint at it is next looked at when its earliest lease runs out. The bounds are read
-- at every claim: lowering the cap or raising the start applies at once. What an endpoint
-- earned belongs to its receiver: enabled again, or given a new url, it starts afresh (a
-- new url also closes its circuit and makes its held deliveries due again, and requests
-- still out to the old url, when they are recorded, say nothing about the new one, even
-- those claimed after the change's transaction began).
begin;
select plan(44);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://erp.example.com/hook') as hook \gset

-- Knobs ----------------------------------------------------------------------------------------
select throws_ok($$update private.webhook_settings set endpoint_concurrency_start = 0$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_endpoint_concurrency_start_range"',
  'a start below 1 is refused, naming the rule');
select throws_ok($$update private.webhook_settings set endpoint_concurrency_start = 1001$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_endpoint_concurrency_start_range"',
  'and above 1000');
select results_eq($$select endpoint_concurrency, endpoint_concurrency_start from private.webhook_settings$$,
  $$values (50, 10)$$, 'the defaults: endpoints start at 10 and may earn up to 50');
update private.webhook_settings set endpoint_concurrency = 12, endpoint_concurrency_start = 3;

create function pg_temp.earned() returns integer language sql as $$
  select e.concurrency_limit from private.webhook_endpoints e
    join public.companies c on c.id = e.company_id and c.name = 'Acme'
$$;
create function pg_temp.claim() returns setof private.claimed_delivery language sql as $$
  select * from private.claim_due_deliveries('worker-1', 100, 60)
$$;
-- Claims everything the endpoint may take now, then records it: `outcome` and `status`
-- for the first `bad` of them, success for the rest. Returns how many were claimed.
create function pg_temp.round_trip(bad integer default 0, outcome text default 'failed', status integer default null)
returns integer language plpgsql as $$
declare
  claimed jsonb := (select jsonb_agg(jsonb_build_object('id', c.delivery_id, 'attempt', c.attempt_number))
                      from pg_temp.claim() c);
begin
  perform private.record_delivery_results('worker-1', (
    select jsonb_agg(jsonb_build_object(
             'delivery_id', c.value ->> 'id', 'attempt_number', (c.value ->> 'attempt')::integer,
             'outcome', case when n <= bad then outcome else 'succeeded' end,
             'status', case when n <= bad then status else 200 end,
             'duration_ms', 1,
             'next_attempt_at', case when n <= bad then now() end))
      from jsonb_array_elements(claimed) with ordinality as c(value, n)), interval '5 days');
  return jsonb_array_length(claimed);
end;
$$;

select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 200) n \gset

-- Growth -----------------------------------------------------------------------------------------
select is(pg_temp.earned(), null, 'a new endpoint has earned nothing yet');
select is(count(*)::integer, 3, 'its first claim takes the start, 3, of 200 due') from pg_temp.claim();
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '60 seconds',
  'at its concurrency, the endpoint is next looked at when its earliest lease runs out');
select tests.time_passes('61 seconds');  -- those leases run out; the rows are due again

select is(pg_temp.round_trip(), 3, 'a round trip at the start sends 3');
select is(pg_temp.earned(), 6, 'three successes earn three more');
select is(pg_temp.round_trip(), 6, 'the next round sends 6');
select is(pg_temp.earned(), 12, 'and doubles it again, to the cap');
select is(pg_temp.round_trip(), 12, 'the next round sends 12');
select is(pg_temp.earned(), 12, 'and successes at the cap earn nothing more');
select is(pg_temp.round_trip(3, 'failed', 400), 12, 'a round with three 400s (the endpoint answered: it is up)');
select is(pg_temp.earned(), 12, 'keeps it: a 4xx is no sign of trouble');

-- Trouble ----------------------------------------------------------------------------------------
select is(pg_temp.round_trip(1, 'failed', null), 12, 'a round with one request that got no answer');
select is(pg_temp.earned(), 6, 'halves it, whatever succeeded beside it');
select is(pg_temp.round_trip(1, 'failed', 429), 6, 'a round with a 429 Too Many Requests');
select is(pg_temp.earned(), 3, 'halves it too');
select is(pg_temp.round_trip(2, 'failed', 503), 3, 'a round with two 503s');
select is(pg_temp.earned(), 3, 'halves it, but never below the start');

-- Growth only while the window is full ----------------------------------------------------------
-- A success counts only when the requests the endpoint had in flight (at any dispatcher)
-- plus the ones being recorded reached what it may have: one that never uses its window
-- does not earn a bigger one.
create function pg_temp.record_all(worker text, claimed jsonb) returns integer language sql as $$
  select private.record_delivery_results(worker, (
    select jsonb_agg(jsonb_build_object('delivery_id', c ->> 'delivery_id', 'attempt_number', (c ->> 'attempt_number')::integer,
                                        'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
      from jsonb_array_elements(claimed) c), interval '5 days')
$$;
create function pg_temp.one_at_a_time(n integer) returns integer language plpgsql as $$
declare
  recorded integer := 0;
begin
  for i in 1..n loop
    recorded := recorded + pg_temp.record_all('worker-1', (select jsonb_agg(to_jsonb(c))
                                                             from private.claim_due_deliveries('worker-1', 1, 60) c));
  end loop;
  return recorded;
end;
$$;
select is(pg_temp.one_at_a_time(10), 10, 'ten deliveries sent one at a time, each recorded before the next is claimed');
select is(pg_temp.earned(), 3, 'earn nothing: the window of 3 was never full');
create temp table elsewhere as
  select to_jsonb(c) as claimed from private.claim_due_deliveries('worker-2', 2, 60) c;
select is(pg_temp.record_all('worker-1', (select jsonb_agg(to_jsonb(c)) from private.claim_due_deliveries('worker-1', 100, 60) c)), 1,
  'with two in flight at another dispatcher, this one claims the third and records its success');
select is(pg_temp.earned(), 4, 'which counts: the window was full across dispatchers');
select is(pg_temp.record_all('worker-2', (select jsonb_agg(claimed) from elsewhere)), 2,
  'the other dispatcher then records its two successes');
select is(pg_temp.earned(), 4, 'which do not: two in flight of a window of 4');
select is(pg_temp.round_trip(1, 'failed', 503), 4, 'a full round with a 503');
select is(pg_temp.earned(), 3, 'halves it back to the start');

-- Bounds read at every claim --------------------------------------------------------------------
update private.webhook_settings set endpoint_concurrency_start = 5;
select is(pg_temp.round_trip(), 5, 'raising the start lifts an endpoint below it at once');
update private.webhook_endpoints set concurrency_limit = 12 where webhook_id = :'hook';
update private.webhook_settings set endpoint_concurrency = 4, endpoint_concurrency_start = 2;
select is(pg_temp.round_trip(), 4, 'lowering the cap below what an endpoint earned applies at once');
select is(pg_temp.earned(), 4, 'and what it keeps is within the new cap');

-- A fresh start -----------------------------------------------------------------------------------
update public.webhooks set is_active = false where id = :'hook';
update public.webhooks set is_active = true where id = :'hook';
select is(pg_temp.earned(), null, 'an endpoint enabled again starts afresh');

select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 20) n \gset
update private.webhook_settings set circuit_failure_threshold = 1, circuit_probe_min_seconds = 600;
select is(pg_temp.round_trip(), 2, 'after the re-enable it sends 2 (the start)');
select is(pg_temp.round_trip(4, 'failed', 503), 4, 'earned 4, then four 503s');
select results_eq($$select circuit_opened_at is not null, ready_at > now() + interval '5 minutes', concurrency_limit
                     from private.webhook_endpoints where webhook_id = (select id from public.webhooks where url = 'https://erp.example.com/hook')$$,
  $$values (true, true, 2)$$,
  'opens its circuit (threshold 1): the rest waits ten minutes for a probe, at concurrency 2');
update public.webhooks set url = 'https://new-erp.example.com/hook' where id = :'hook';
select results_eq($$select circuit_opened_at, consecutive_failures, failing_since, concurrency_limit, ready_at <= now()
                     from private.webhook_endpoints where webhook_id = (select id from public.webhooks where url = 'https://new-erp.example.com/hook')$$,
  $$values (null::timestamptz, 0, null::timestamptz, null::integer, true)$$,
  'a new url is a new receiver: circuit closed, no failing streak, nothing earned, the held deliveries due now');
select tests.time_passes('1 minute');  -- claims after the change, not in its instant (see below)
select is(pg_temp.round_trip(), 2, 'and the next claim sends to it at the start');
update public.webhooks set url = url, description = 'the ERP, new host' where id = :'hook';
select is(pg_temp.earned(), 4, 'an edit that sends the same url (as the portal does) keeps what it earned');

-- Requests to the old url still in flight when it changes ------------------------------------
create temp table in_flight as select delivery_id, attempt_number from pg_temp.claim();
select is((select count(*)::integer from in_flight), 4, 'four requests go out to new-erp.example.com');
select tests.time_passes('1 second');
update public.webhooks set url = 'https://erp-3.example.com/hook' where id = :'hook';
select is(private.record_delivery_results('worker-1', (select jsonb_agg(jsonb_build_object(
    'delivery_id', delivery_id, 'attempt_number', attempt_number, 'outcome', 'failed', 'status', 410,
    'duration_ms', 1, 'next_attempt_at', now(), 'gone', true)) from in_flight), interval '5 days'), 4,
  'the url changes meanwhile, and those four come back 410 Gone from the old host: their deliveries move');
select results_eq($$select w.is_active, e.consecutive_failures, e.failing_since, e.concurrency_limit, e.last_status
                     from private.webhook_endpoints e join public.webhooks w on w.id = e.webhook_id
                    where w.url = 'https://erp-3.example.com/hook'$$,
  $$values (true, 0, null::timestamptz, null::integer, null::integer)$$,
  'but they say nothing about the new host: not disabled, no failure counted, nothing halved, no last status');
select is((select count(*)::integer from public.webhook_delivery_attempts
            where delivery_id in (select delivery_id from in_flight) and status = 410), 4,
  'and their attempts are logged');

-- A claim made after the ADMIN's transaction began but before its change took the
-- endpoint's lock (here, in the same instant: now() stands still) sent to the old url too.
create temp table in_flight_2 as select delivery_id, attempt_number from pg_temp.claim();
update public.webhooks set url = 'https://erp-4.example.com/hook' where id = :'hook';
select is(private.record_delivery_results('worker-1', (select jsonb_agg(jsonb_build_object(
    'delivery_id', delivery_id, 'attempt_number', attempt_number, 'outcome', 'failed', 'status', 410,
    'duration_ms', 1, 'next_attempt_at', now(), 'gone', true)) from in_flight_2), interval '5 days'),
  (select count(*)::integer from in_flight_2),
  'requests claimed as the url changes come back 410 Gone from the old host');
select results_eq($$select w.is_active, e.consecutive_failures, e.last_status, (select count(*) > 0 from in_flight_2)
                     from private.webhook_endpoints e join public.webhooks w on w.id = e.webhook_id
                    where w.url = 'https://erp-4.example.com/hook'$$,
  $$values (true, 0, null::integer, true)$$,
  'and do not disable the endpoint with its new url, nor count against it');

select * from finish();
rollback;

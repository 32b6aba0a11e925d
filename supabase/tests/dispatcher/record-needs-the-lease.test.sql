-- A result moves a delivery only when it comes from the dispatcher that holds its lease
-- (lease_owner = worker) for the attempt in progress (attempt_count = attempt_number).
-- Here the attempt number is the current one, so only the lease check stands between a
-- dispatcher that lost its lease (or never had it) and the delivery: its result moves
-- nothing (the delivery stays pending with the holder), counts for nothing in the
-- endpoint's health, and releases nothing of an ordered key. It is still logged: it happened.
-- A record or release that names no worker at all is refused before it writes anything.
begin;
select plan(15);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://one.example.com/hook') as hook \gset
update public.webhooks set delivery_order = 'ordered' where id = :'hook';

-- Two events of one process: the second waits for the first.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p-1", "revision": 2}') as first_event \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p-1", "revision": 3}') as second_event \gset
select id as head from public.webhook_deliveries where event_id = :'first_event' \gset
select id as behind from public.webhook_deliveries where event_id = :'second_event' \gset

select is((select delivery_id from private.claim_due_deliveries('worker-1', 10, 60)), :'head'::uuid, 'worker-1 claims the head (attempt 1)');
select tests.time_passes('61 seconds');  -- worker-1 stalls; its lease runs out
select results_eq($$select delivery_id, attempt_number from private.claim_due_deliveries('worker-2', 10, 60)$$,
  format($$values (%L::uuid, 2)$$, :'head'),
  'worker-2 takes it over as attempt 2');

-- worker-1 finally answers, for what is now the current attempt number.
select is(private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'head', 'attempt_number', 2, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 61000)), interval '5 days'),
  0, 'a success from the worker that lost the lease, with the current attempt number, moves nothing');
select results_eq(format($$select state, lease_owner, attempt_count, next_attempt_at from public.webhook_deliveries where id = %L$$, :'head'),
  $$values ('pending'::public.webhook_delivery_state, 'worker-2'::text, 2, now() + interval '60 seconds')$$,
  'the delivery stays pending, leased to worker-2');
select is((select next_attempt_at from public.webhook_deliveries where id = :'behind'), 'infinity'::timestamptz,
  'the next delivery of its key is not released');

-- A dispatcher that never held it.
select is(private.record_delivery_results('worker-3', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'head', 'attempt_number', 2, 'outcome', 'failed', 'status', 503, 'duration_ms', 5,
    'next_attempt_at', now() + interval '1 minute')), interval '5 days'),
  0, 'a failure from a worker that never held the lease moves nothing');
-- No worker named: refused (like a claim), and nothing is written, not even the attempt.
select throws_ok(format($$select private.record_delivery_results(null, jsonb_build_array(jsonb_build_object(
    'delivery_id', %L, 'attempt_number', 2, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 5)), interval '5 days')$$, :'head'),
  '22023', 'worker must name the dispatcher that holds the leases', 'a record with no worker is refused');
select throws_ok(format($$select private.record_delivery_results('  ', jsonb_build_array(jsonb_build_object(
    'delivery_id', %L, 'attempt_number', 2, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 5)), interval '5 days')$$, :'head'),
  '22023', 'worker must name the dispatcher that holds the leases', 'so is one with a blank worker');
select throws_ok(format($$select private.release_deliveries(null, array[%L::uuid])$$, :'head'),
  '22023', 'worker must name the dispatcher that holds the leases', 'a release with no worker is refused');
select throws_ok($$select private.release_deliveries('worker-2', null)$$,
  '22023', 'delivery_ids must be an array of delivery ids (empty releases nothing)', 'so is a release of no array');
select results_eq(format($$select lease_owner, attempt_count from public.webhook_deliveries where id = %L$$, :'head'),
  $$values ('worker-2'::text, 2)$$,
  'the delivery is still leased to worker-2, as attempt 2');
select results_eq(format($$select consecutive_failures, failing_since, last_attempt_at from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (0, null::timestamptz, null::timestamptz)$$,
  'and counts for nothing in the endpoint''s health');
select results_eq(format($$select worker, attempt_number, outcome::text from public.webhook_delivery_attempts where delivery_id = %L order by id$$, :'head'),
  $$values ('worker-1'::text, 2, 'succeeded'::text), ('worker-3', 2, 'failed')$$,
  'both are logged as attempts that happened');

-- The holder's result is applied.
select is(private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'head', 'attempt_number', 2, 'outcome', 'succeeded', 'status', 204, 'duration_ms', 5)), interval '5 days'),
  1, 'the lease holder''s result moves the delivery');
select results_eq(format($$select d.state::text, b.next_attempt_at from public.webhook_deliveries d, public.webhook_deliveries b
                            where d.id = %L and b.id = %L$$, :'head', :'behind'),
  $$values ('succeeded'::text, now())$$,
  'it succeeded, and the next delivery of its key is due now');

select * from finish();
rollback;

-- A result recorded twice is logged once (20261201090500). The dispatcher writes its
-- results again when a connection lost the answer to a write that had committed; the
-- second write moves nothing (it holds no lease) and must not log the attempts again. A
-- late answer from a dispatcher that lost its lease is still logged, once.
begin;
select plan(13);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://one.example.com/hook') as hook \gset

select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p-1", "revision": 2}') as e1 \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p-2", "revision": 2}') as e2 \gset
select id as ok_delivery from public.webhook_deliveries where event_id = :'e1' \gset
select id as retry_delivery from public.webhook_deliveries where event_id = :'e2' \gset
select is((select count(*)::integer from private.claim_due_deliveries('worker-1', 10, 60)), 2, 'worker-1 claims both');

-- One write: a success and a failure to be retried.
create temporary table batch as
select jsonb_build_array(
         jsonb_build_object('delivery_id', :'ok_delivery', 'attempt_number', 1, 'outcome', 'succeeded',
                            'status', 200, 'duration_ms', 12, 'response_body', 'ok'),
         jsonb_build_object('delivery_id', :'retry_delivery', 'attempt_number', 1, 'outcome', 'failed',
                            'status', 503, 'duration_ms', 15, 'error', 'HTTP 503',
                            'next_attempt_at', now() + interval '1 minute')) as results;
select is(private.record_delivery_results('worker-1', (select results from batch), interval '5 days'), 2,
  'the first write moves both');

-- The same write again (its first answer was lost with the connection).
select is(private.record_delivery_results('worker-1', (select results from batch), interval '5 days'), 0,
  'written again, it moves nothing');
select results_eq(format($$select delivery_id, attempt_number, outcome::text, worker from public.webhook_delivery_attempts
                            where delivery_id in (%L, %L) order by status$$, :'ok_delivery', :'retry_delivery'),
  format($$values (%L::uuid, 1, 'succeeded'::text, 'worker-1'::text), (%L::uuid, 1, 'failed', 'worker-1')$$, :'ok_delivery', :'retry_delivery'),
  'and each attempt is logged once');
select results_eq(format($$select state::text, next_attempt_at, lease_owner from public.webhook_deliveries where id = %L$$, :'retry_delivery'),
  $$values ('pending'::text, now() + interval '1 minute', null::text)$$,
  'the retry keeps the schedule of the first write');
-- A late answer from a dispatcher whose lease ran out meanwhile.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p-3", "revision": 2}') as e3 \gset
select id as late_delivery from public.webhook_deliveries where event_id = :'e3' \gset
select is((select delivery_id from private.claim_due_deliveries('worker-1', 1, 60)), :'late_delivery'::uuid,
  'worker-1 claims a third delivery (attempt 1)');
select tests.time_passes('61 seconds');
select results_eq(format($$select delivery_id, attempt_number from private.claim_due_deliveries('worker-2', 10, 60)
                            where delivery_id = %L$$, :'late_delivery'),
  format($$values (%L::uuid, 2)$$, :'late_delivery'),
  'its lease runs out; worker-2 takes it as attempt 2');
create temporary table late as
select jsonb_build_array(jsonb_build_object('delivery_id', :'late_delivery', 'attempt_number', 1, 'outcome', 'succeeded',
                                            'status', 200, 'duration_ms', 61000)) as results;
select is(private.record_delivery_results('worker-1', (select results from late), interval '5 days'), 0,
  'worker-1''s late success moves nothing');
select is(private.record_delivery_results('worker-1', (select results from late), interval '5 days'), 0,
  'nor does the same, written again');
select results_eq(format($$select worker, attempt_number from public.webhook_delivery_attempts where delivery_id = %L$$, :'late_delivery'),
  $$values ('worker-1'::text, 1)$$,
  'the late attempt is logged, once');

-- A write that repeats one result and brings a new one: only the new one is logged.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p-4", "revision": 2}') as e4 \gset
select id as new_delivery from public.webhook_deliveries where event_id = :'e4' \gset
select is((select delivery_id from private.claim_due_deliveries('worker-1', 1, 60)), :'new_delivery'::uuid,
  'worker-1 claims a fourth delivery');
select is(private.record_delivery_results('worker-1', jsonb_build_array(
    (select results -> 0 from batch),
    jsonb_build_object('delivery_id', :'new_delivery', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 204, 'duration_ms', 9)),
    interval '5 days'), 1,
  'beside a repeated result, the new one moves its delivery');
select results_eq(format($$select delivery_id, attempt_number from public.webhook_delivery_attempts
                            where delivery_id in (%L, %L) order by id$$, :'ok_delivery', :'new_delivery'),
  format($$values (%L::uuid, 1), (%L::uuid, 1)$$, :'ok_delivery', :'new_delivery'),
  'and is the only one logged');

select * from finish();
rollback;

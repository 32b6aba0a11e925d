-- private.record_delivery_results and the delivery life cycle: success, retry, exhaustion,
-- blocked targets, stale workers, the attempts log, endpoint health (the failing streak in
-- private.webhook_endpoints.failing_since, 410 Gone, continuous failure), release_deliveries, and what disabling or deleting an endpoint does to its work
-- (cancelled, never dropped), or deleting its whole company (everything goes with it, also
-- deliveries created earlier in the same transaction).
begin;
select plan(67);

select tests.create_company('Acme') as company_a \gset
select tests.create_user('admin@acme.test', :'company_a', 'ADMIN') as admin_a \gset
-- One endpoint per trigger type, so each scenario's deliveries are its own.
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://main.example.com/hook') as hook_main \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://gone.example.com/hook') as hook_gone \gset
select tests.create_webhook(:'company_a', 'PROCESS_DELETED', 'https://off.example.com/hook') as hook_off \gset
select tests.create_webhook(:'company_a', 'WEBHOOK_TEST', 'https://deleted.example.com/hook') as hook_deleted \gset

select tests.create_claims_table();

-- Argument validation ---------------------------------------------------------------
select throws_ok($$select private.record_delivery_results('worker-1', '{"delivery_id": null}', interval '5 days')$$,
  '22023', 'results must be a JSON array of attempt results', 'results must be an array');
select throws_ok($$select private.record_delivery_results('worker-1', null, interval '5 days')$$,
  '22023', 'results must be a JSON array of attempt results', 'results must not be null');
select is(private.record_delivery_results('worker-1', '[]', interval '5 days'), 0, 'an empty batch moves nothing');
-- How long an endpoint may fail is the dispatcher's setting: no default here could disagree.
select throws_ok($$select private.record_delivery_results('worker-1', '[]')$$,
  '42883', 'function private.record_delivery_results(unknown, unknown) does not exist', 'disable_after has no default');

-- Success ---------------------------------------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"case": "success"}') as event_ok \gset
insert into claims select 'success', * from private.claim_due_deliveries('worker-1', 10, 60);
select delivery_id as delivery_ok from claims where call = 'success' \gset

select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_ok', 'attempt_number', 1, 'outcome', 'succeeded',
    'status', 200, 'duration_ms', 120, 'response_body', 'thanks')), interval '5 days'),
  1, 'a success is applied');
select results_eq(
  format($$select state, completed_at, next_attempt_at, lease_owner, lease_expires_at, last_status, last_error, attempt_count
             from public.webhook_deliveries where id = %L$$, :'delivery_ok'),
  $$values ('succeeded'::public.webhook_delivery_state, now(), null::timestamptz, null::text, null::timestamptz, 200, null::text, 1)$$,
  'success: succeeded, completed now, lease cleared, status kept');
select results_eq(
  format($$select company_id, attempt_number, outcome, status, duration_ms, response_body, error, worker
             from public.webhook_delivery_attempts where delivery_id = %L$$, :'delivery_ok'),
  format($$values (%L::uuid, 1, 'succeeded'::public.webhook_attempt_outcome, 200, 120, 'thanks'::text, null::text, 'worker-1'::text)$$, :'company_a'),
  'the attempt is logged with status, duration, body and worker');
select is((select failing_since from private.webhook_endpoints where webhook_id = :'hook_main'), null,
  'a healthy endpoint has no failing streak');

-- Failure, retried, then exhausted --------------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"case": "retry"}') as event_retry \gset
insert into claims select 'retry-1', * from private.claim_due_deliveries('worker-1', 10, 60);
select delivery_id as delivery_retry from claims where call = 'retry-1' \gset

select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_retry', 'attempt_number', 1, 'outcome', 'failed',
    'status', 500, 'duration_ms', 35, 'response_body', repeat('x', 5000),
    'error', 'HTTP 500 ' || repeat('e', 3000), 'next_attempt_at', now() + interval '5 minutes')), interval '5 days'),
  1, 'a failure with a next attempt is applied');
select results_eq(
  format($$select state, next_attempt_at, completed_at, lease_owner, lease_expires_at, last_status, attempt_count
             from public.webhook_deliveries where id = %L$$, :'delivery_retry'),
  $$values ('pending'::public.webhook_delivery_state, now() + interval '5 minutes', null::timestamptz, null::text, null::timestamptz, 500, 1)$$,
  'failure with next_attempt_at: pending again, rescheduled, lease cleared');
select is((select char_length(last_error) from public.webhook_deliveries where id = :'delivery_retry'), 2000,
  'last_error is capped at 2000 characters');
select results_eq(
  format($$select char_length(response_body), char_length(error), outcome, status, duration_ms
             from public.webhook_delivery_attempts where delivery_id = %L$$, :'delivery_retry'),
  $$values (4096, 2000, 'failed'::public.webhook_attempt_outcome, 500, 35)$$,
  'the logged response body is truncated to 4096 characters, the error to 2000');
select is((select failing_since from private.webhook_endpoints where webhook_id = :'hook_main'), now(),
  'the first failure starts the endpoint''s failing streak');
select is((select count(*)::integer from private.claim_due_deliveries('worker-1', 10, 60)), 0,
  'a rescheduled delivery is not due before its next attempt');

select tests.time_passes('5 minutes');
insert into claims select 'retry-2', * from private.claim_due_deliveries('worker-1', 10, 60);
select is((select attempt_number from claims where call = 'retry-2'), 2, 'the retry is attempt 2');
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_retry', 'attempt_number', 2, 'outcome', 'failed',
    'status', 503, 'duration_ms', 40, 'error', 'HTTP 503', 'next_attempt_at', null)), interval '5 days'),
  1, 'a failure without a next attempt is applied');
select results_eq(
  format($$select state, next_attempt_at, completed_at, last_status, last_error, attempt_count
             from public.webhook_deliveries where id = %L$$, :'delivery_retry'),
  $$values ('failed'::public.webhook_delivery_state, null::timestamptz, now(), 503, 'HTTP 503'::text, 2)$$,
  'failure with next_attempt_at null: failed (retries exhausted), completed');
select is((select array_agg(attempt_number order by attempt_number) from public.webhook_delivery_attempts
            where delivery_id = :'delivery_retry'), array[1, 2],
  'both attempts are logged');
select is((select failing_since from private.webhook_endpoints where webhook_id = :'hook_main'), now() - interval '5 minutes',
  'the failing streak keeps its start');

-- Blocked by the SSRF guard -----------------------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"case": "blocked"}') as event_blocked \gset
insert into claims select 'blocked', * from private.claim_due_deliveries('worker-1', 10, 60);
select delivery_id as delivery_blocked from claims where call = 'blocked' \gset
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_blocked', 'attempt_number', 1, 'outcome', 'blocked', 'duration_ms', 1,
    'error', 'blocked: main.example.com resolves to 10.0.0.5, a private address',
    'next_attempt_at', now() + interval '5 seconds')), interval '5 days'),
  1, 'a blocked attempt is applied');
select results_eq(
  format($$select outcome, status, error from public.webhook_delivery_attempts where delivery_id = %L$$, :'delivery_blocked'),
  $$values ('blocked'::public.webhook_attempt_outcome, null::integer, 'blocked: main.example.com resolves to 10.0.0.5, a private address'::text)$$,
  'the blocked attempt is logged with its reason and no status');
select results_eq(
  format($$select state, next_attempt_at, last_status, last_error from public.webhook_deliveries where id = %L$$, :'delivery_blocked'),
  $$values ('pending'::public.webhook_delivery_state, now() + interval '5 seconds', null::integer,
            'blocked: main.example.com resolves to 10.0.0.5, a private address'::text)$$,
  'a blocked delivery is retried like a failure');

-- Stale workers -----------------------------------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"case": "stale"}') as event_stale \gset
insert into claims select 'stale-1', * from private.claim_due_deliveries('worker-1', 10, 60);
select delivery_id as delivery_stale from claims where call = 'stale-1' \gset
-- worker-1 stalls; its lease runs out and worker-2 takes the delivery over. (The blocked
-- delivery is kept out of the way: its next attempt is an hour away.)
update public.webhook_deliveries set next_attempt_at = now() + interval '1 hour' where id = :'delivery_blocked';
select tests.time_passes('61 seconds');
insert into claims select 'stale-2', * from private.claim_due_deliveries('worker-2', 10, 60);
select is((select attempt_number from claims where call = 'stale-2' and delivery_id = :'delivery_stale'), 2,
  'worker-2 took the delivery over as attempt 2');

select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_stale', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 9000)), interval '5 days'),
  0, 'the worker that lost its lease moves nothing');
select results_eq(
  format($$select state, lease_owner, attempt_count from public.webhook_deliveries where id = %L$$, :'delivery_stale'),
  $$values ('pending'::public.webhook_delivery_state, 'worker-2'::text, 2)$$,
  'the delivery stays with the worker that holds the lease');
select is(
  private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_stale', 'attempt_number', 1, 'outcome', 'failed', 'status', 500, 'duration_ms', 5,
    'next_attempt_at', now())), interval '5 days'),
  0, 'a result for another attempt number than the current one moves nothing');
select results_eq(
  format($$select state, lease_owner, attempt_count, last_status from public.webhook_deliveries where id = %L$$, :'delivery_stale'),
  $$values ('pending'::public.webhook_delivery_state, 'worker-2'::text, 2, null::integer)$$,
  'the delivery is untouched');
select is(
  private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_stale', 'attempt_number', 2, 'outcome', 'succeeded', 'status', 204, 'duration_ms', 7)), interval '5 days'),
  1, 'the lease holder''s result for the current attempt is applied');
select results_eq(
  format($$select worker, attempt_number, outcome, status from public.webhook_delivery_attempts
            where delivery_id = %L order by id$$, :'delivery_stale'),
  $$values ('worker-1'::text, 1, 'succeeded'::public.webhook_attempt_outcome, 200), ('worker-2', 1, 'failed', 500), ('worker-2', 2, 'succeeded', 204)$$,
  'every attempt is logged, stale ones included: they happened');
select is((select failing_since from private.webhook_endpoints where webhook_id = :'hook_main'), null,
  'a success ends the failing streak');

select count(*) as attempts_before from public.webhook_delivery_attempts \gset
select is(
  private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
    'delivery_id', gen_random_uuid(), 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days'),
  0, 'a result for an unknown delivery moves nothing');
select is((select count(*) from public.webhook_delivery_attempts), :attempts_before::bigint,
  'and logs nothing');

-- Continuous failure disables the endpoint ----------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"case": "streak"}') as event_streak \gset
insert into claims select 'streak-1', * from private.claim_due_deliveries('worker-1', 10, 60);
select delivery_id as delivery_streak from claims where call = 'streak-1' \gset
update private.webhook_endpoints set failing_since = now() - interval '4 days' where webhook_id = :'hook_main';
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_streak', 'attempt_number', 1, 'outcome', 'failed', 'status', 502, 'duration_ms', 3,
    'next_attempt_at', now() - interval '1 second')), interval '5 days'),
  1, 'a failure four days into a streak is applied');
select results_eq(
  format($$select w.is_active, e.failing_since from public.webhooks w join private.webhook_endpoints e on e.webhook_id = w.id
             where w.id = %L$$, :'hook_main'),
  $$values (true, now() - interval '4 days')$$,
  'four days of failures (disable_after 5 days): still active, streak unchanged');

insert into claims select 'streak-2', * from private.claim_due_deliveries('worker-1', 10, 60);
update private.webhook_endpoints set failing_since = now() - interval '6 days' where webhook_id = :'hook_main';
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_streak', 'attempt_number', 2, 'outcome', 'failed', 'status', 502, 'duration_ms', 3,
    'next_attempt_at', now() + interval '10 hours')), interval '5 days'),
  1, 'a failure six days into a streak is applied');
select results_eq(
  format($$select is_active, disabled_at, disabled_reason from public.webhooks where id = %L$$, :'hook_main'),
  format($$values (false, now(), %L::text)$$,
         format('failing continuously since %s (longer than %s)', now() - interval '6 days', interval '5 days')),
  'failing longer than disable_after disables the endpoint and says why');
select results_eq(
  format($$select state, completed_at, next_attempt_at, last_error from public.webhook_deliveries where id = %L$$, :'delivery_streak'),
  format($$values ('cancelled'::public.webhook_delivery_state, now(), null::timestamptz, %L::text)$$,
         format('endpoint disabled: failing continuously since %s (longer than %s)', now() - interval '6 days', interval '5 days')),
  'its rescheduled delivery is cancelled with the reason');
select results_eq(
  format($$select state, last_error from public.webhook_deliveries where id = %L$$, :'delivery_blocked'),
  format($$values ('cancelled'::public.webhook_delivery_state, %L::text)$$,
         format('endpoint disabled: failing continuously since %s (longer than %s)', now() - interval '6 days', interval '5 days')),
  'and so is every other pending delivery of the endpoint');

-- A custom disable_after.
update public.webhooks set is_active = true where id = :'hook_main';
select is((select failing_since from private.webhook_endpoints where webhook_id = :'hook_main'), null,
  're-enabling an endpoint clears its streak');
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"case": "custom"}') as event_custom \gset
insert into claims select 'custom', * from private.claim_due_deliveries('worker-1', 10, 60);
select delivery_id as delivery_custom from claims where call = 'custom' \gset
update private.webhook_endpoints set failing_since = now() - interval '2 hours' where webhook_id = :'hook_main';
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_custom', 'attempt_number', 1, 'outcome', 'failed', 'status', 500, 'duration_ms', 3,
    'next_attempt_at', null)), interval '1 hour'),
  1, 'a failure with disable_after 1 hour is applied');
select is((select is_active from public.webhooks where id = :'hook_main'), false,
  'two hours of failures exceed a disable_after of 1 hour');
select is((select state from public.webhook_deliveries where id = :'delivery_custom'), 'failed',
  'the delivery that exhausted its retries stays failed (not cancelled)');
update public.webhooks set is_active = true where id = :'hook_main';

-- 410 Gone --------------------------------------------------------------------------
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n))) as gone_events
  from generate_series(1, 3) n \gset
insert into claims select 'gone', * from private.claim_due_deliveries('worker-1', 1, 60);
select delivery_id as delivery_gone from claims where call = 'gone' \gset
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_gone', 'attempt_number', 1, 'outcome', 'failed', 'status', 410, 'duration_ms', 4,
    'error', 'HTTP 410', 'gone', true, 'next_attempt_at', null)), interval '5 days'),
  1, 'a 410 Gone result is applied');
select results_eq(
  format($$select is_active, disabled_at, disabled_reason from public.webhooks where id = %L$$, :'hook_gone'),
  $$values (false, now(), 'the endpoint answered 410 Gone'::text)$$,
  '410 Gone disables the endpoint at once, with the reason');
select results_eq(
  format($$select state, last_status from public.webhook_deliveries where id = %L$$, :'delivery_gone'),
  $$values ('failed'::public.webhook_delivery_state, 410)$$,
  'the delivery that got the 410 is failed');
select results_eq(
  format($$select state, last_error, count(*)::integer from public.webhook_deliveries
            where webhook_id = %L and id <> %L group by 1, 2$$, :'hook_gone', :'delivery_gone'),
  $$values ('cancelled'::public.webhook_delivery_state, 'endpoint disabled: the endpoint answered 410 Gone'::text, 2)$$,
  'its other pending deliveries are cancelled with the reason');
select is((select is_active from public.webhooks where id = :'hook_main'), true,
  'other endpoints of the company are not affected');

-- release_deliveries ----------------------------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"case": "release"}') as event_release \gset
insert into claims select 'release', * from private.claim_due_deliveries('worker-1', 10, 60);
select delivery_id as delivery_release from claims where call = 'release' \gset
select is(private.release_deliveries('worker-2', array[:'delivery_release'::uuid]), 0,
  'a worker cannot release a lease it does not hold');
select is(private.release_deliveries('worker-1', array[:'delivery_release'::uuid, :'delivery_ok'::uuid]), 1,
  'the lease holder releases its pending delivery (a closed one is ignored)');
select results_eq(
  format($$select state, next_attempt_at, lease_owner, lease_expires_at, attempt_count
             from public.webhook_deliveries where id = %L$$, :'delivery_release'),
  $$values ('pending'::public.webhook_delivery_state, now(), null::text, null::timestamptz, 0)$$,
  'released: due now, unleased, and the attempt that never started is not counted');
select tests.authenticate_as_service_role();
select is((select attempt_number from private.claim_due_deliveries('worker-3', 10, 60)), 1,
  'the next claim (here by the service role) makes attempt 1 again');
select is(private.release_deliveries('worker-3', array[:'delivery_release'::uuid]), 1,
  'the service role may release too');
select tests.clear_authentication();
select is((select count(*)::integer from public.webhook_delivery_attempts where delivery_id = :'delivery_release'), 0,
  'a release logs no attempt');

-- Disabling an endpoint cancels its pending work ----------------------------------------
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_DELETED', jsonb_build_object('n', n))) as off_events
  from generate_series(1, 3) n \gset
update public.webhook_deliveries set next_attempt_at = now() + interval '1 hour' where id = :'delivery_release';
insert into claims select 'off', * from private.claim_due_deliveries('worker-1', 2, 60);
select (array_agg(delivery_id))[1] as delivery_off_done, (array_agg(delivery_id))[2] as delivery_off_leased
  from claims where call = 'off' \gset
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_off_done', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 2)), interval '5 days'),
  1, 'one delivery of the endpoint succeeded before it was disabled');

select tests.authenticate_as(:'admin_a');
update public.webhooks set is_active = false where id = :'hook_off';
select tests.clear_authentication();

select results_eq(
  format($$select state, last_error, count(*)::integer from public.webhook_deliveries
            where webhook_id = %L and id <> %L group by 1, 2$$, :'hook_off', :'delivery_off_done'),
  $$values ('cancelled'::public.webhook_delivery_state, 'endpoint disabled: disabled by an admin'::text, 2)$$,
  'an admin disabling the endpoint cancels its pending deliveries, leased or not, saying why');
select is(
  (select count(*)::integer from public.webhook_deliveries
    where webhook_id = :'hook_off' and state = 'cancelled'
      and completed_at = now() and next_attempt_at is null and lease_owner is null and lease_expires_at is null),
  2, 'cancelled deliveries are closed and unleased');
select is((select state from public.webhook_deliveries where id = :'delivery_off_done'), 'succeeded',
  'a delivery that already succeeded is left alone');
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_off_leased', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 2)), interval '5 days'),
  0, 'a result arriving after the cancellation moves nothing');
select is((select state from public.webhook_deliveries where id = :'delivery_off_leased'), 'cancelled',
  'the cancelled delivery stays cancelled');

-- Deleting an endpoint cancels its pending work and keeps the history --------------------
select count(private.enqueue_webhook_event(:'company_a', 'WEBHOOK_TEST', jsonb_build_object('n', n))) as deleted_events
  from generate_series(1, 2) n \gset
insert into claims select 'deleted', * from private.claim_due_deliveries('worker-1', 1, 60);
select delivery_id as delivery_deleted_done from claims where call = 'deleted' \gset
select is(
  private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'delivery_deleted_done', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 2)), interval '5 days'),
  1, 'one delivery of the endpoint succeeded before it was deleted');
select id as delivery_deleted_pending from public.webhook_deliveries
 where webhook_id = :'hook_deleted' and state = 'pending' \gset

select tests.authenticate_as(:'admin_a');
delete from public.webhooks where id = :'hook_deleted';
select tests.clear_authentication();

select results_eq(
  format($$select state, last_error, webhook_id, completed_at from public.webhook_deliveries where id = %L$$, :'delivery_deleted_pending'),
  format($$values ('cancelled'::public.webhook_delivery_state, 'endpoint deleted'::text, %L::uuid, now())$$, :'hook_deleted'),
  'deleting the endpoint cancels its pending delivery; the row survives, naming the deleted endpoint');
select results_eq(
  format($$select state, webhook_id from public.webhook_deliveries where id = %L$$, :'delivery_deleted_done'),
  format($$values ('succeeded'::public.webhook_delivery_state, %L::uuid)$$, :'hook_deleted'),
  'its succeeded delivery survives too');
select is((select count(*)::integer from public.webhook_delivery_attempts where delivery_id = :'delivery_deleted_done'), 1,
  'with its attempts');
select is((select count(*)::integer from public.webhook_events where trigger_type = 'WEBHOOK_TEST'), 2,
  'and the events are kept');

-- Deleting a company deletes its deliveries with it: nothing is left to cancel, not even
-- what the same transaction created ("delete the processes, then the company").
select tests.create_company('Gone Inc') as company_gone \gset
select tests.create_webhook(:'company_gone', 'PROCESS_DELETED', 'https://gone-inc.example.com/hook') as hook_gone_inc \gset
insert into public.processes (company_id, name) values (:'company_gone', 'P');
select lives_ok(
  format($$delete from public.processes where company_id = %L$$, :'company_gone'),
  'delete the company''s processes (PROCESS_DELETED deliveries are created)');
select lives_ok(
  format($$delete from public.companies where id = %L$$, :'company_gone'),
  'then delete the company in the same transaction');
select is((select count(*)::integer from public.webhook_deliveries where company_id = :'company_gone'), 0,
  'and its deliveries went with it');

select * from finish();
rollback;

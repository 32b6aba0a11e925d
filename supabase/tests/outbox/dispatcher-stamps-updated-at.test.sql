-- The dispatcher's two writes per delivery stamp updated_at themselves, and the row
-- trigger stays out of them (20261202090300). Every other update of a delivery still gets
-- updated_at = now() from the trigger. The trigger's calls are counted in this transaction
-- (track_functions, pg_stat_xact_user_functions).
begin;
select plan(8);

set local track_functions = 'pl';
create function pg_temp.trigger_calls() returns bigint language sql as $$
  select coalesce((select f.calls from pg_stat_xact_user_functions f
                    where f.schemaname = 'private' and f.funcname = 'tg_set_updated_at'), 0)
$$;

select tests.create_company('Stamps') as co \gset
select tests.create_webhook(:'co', 'PROCESS_REVISED', 'https://stamps.example.com/hook') as hook \gset
select count(private.enqueue_webhook_event(:'co', 'PROCESS_REVISED', '{}')) from generate_series(1, 3) \gset

-- A writer that sets updated_at keeps its value: the trigger stays out.
update public.webhook_deliveries set updated_at = now() - interval '1 day' where webhook_id = :'hook';
select is((select count(*)::integer from public.webhook_deliveries
            where webhook_id = :'hook' and updated_at = now() - interval '1 day'), 3,
  'an update that sets updated_at keeps the value it set');

select pg_temp.trigger_calls() as before_claim \gset
select delivery_id as leased from private.claim_due_deliveries('worker-1', 1, 60) \gset
select is(pg_temp.trigger_calls(), :before_claim::bigint, 'the claim runs no trigger on the row it leases');
select is((select updated_at from public.webhook_deliveries where id = :'leased'), now(),
  'the leased delivery''s updated_at is now');

-- From a day ago again, so that the record's own stamp shows.
update public.webhook_deliveries set updated_at = now() - interval '1 day' where id = :'leased';
select is(private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', :'leased', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)),
    interval '5 days'), 1, 'its result is recorded');
select is(pg_temp.trigger_calls(), :before_claim::bigint, 'the record runs no trigger on the row it moves');
select is((select updated_at from public.webhook_deliveries where id = :'leased'), now(),
  'the recorded delivery''s updated_at is now');

-- Any other write that leaves updated_at alone gets now() from the trigger, as before.
select is((select count(*)::integer from public.webhook_deliveries
            where webhook_id = :'hook' and state = 'pending' and updated_at = now() - interval '1 day'), 2,
  'the two deliveries not claimed still say a day ago');
update public.webhook_deliveries set last_error = 'touched' where webhook_id = :'hook' and state = 'pending';
select is((select count(*)::integer from public.webhook_deliveries
            where webhook_id = :'hook' and state = 'pending' and updated_at = now()), 2,
  'an update that leaves updated_at alone gets now() from the trigger');

select * from finish();
rollback;

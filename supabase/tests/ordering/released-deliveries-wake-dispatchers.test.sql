-- A delivery held for its turn on an ordered endpoint (next_attempt_at = 'infinity') that is
-- released wakes the dispatchers when none is awake, as a new delivery does: an ADMIN
-- cancelling the head of a key, and switching the endpoint back to parallel. While a
-- dispatcher is awake nothing is sent (it sees the row itself), and updates that release
-- nothing (claims, recorded retries, a cancel with nothing behind it) never wake anyone.
-- Observed through pg_net's wake-up of the edge function: this file stands in a
-- `net.http_post` that records its calls (as wake-dispatcher-pg-net.test.sql does); the
-- NOTIFY sent beside it is what the browser test's local worker hears.
-- The heartbeat is a sequence (not transactional): this file sets it as each case needs
-- and leaves it cleared.
begin;
select plan(14);

create schema net;
create table net.calls (url text, headers jsonb, body jsonb, timeout_milliseconds integer);
create function net.http_post(url text, headers jsonb, body jsonb, timeout_milliseconds integer)
returns bigint language sql as $$
  insert into net.calls values (url, headers, body, timeout_milliseconds);
  select 1::bigint
$$;
update private.webhook_settings
   set dispatcher_url = 'https://project.supabase.co/functions/v1/webhook-dispatcher',
       dispatcher_key = 'service-key',
       wakeup_interval_ms = 0;

-- Each case starts asleep or awake, with no call recorded and the once-per-transaction
-- guard reset as a new transaction would.
create function pg_temp.fresh_case(awake boolean) returns void language sql as $$
  select setval('private.webhook_dispatcher_heartbeat',
                case when awake then (extract(epoch from clock_timestamp()) * 1000)::bigint else 0 end);
  delete from net.calls;
  select set_config('webhooks.woken_in_xact', '', true);
$$;
create function pg_temp.calls() returns bigint language sql as $$ select count(*) from net.calls $$;

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/ordered') as ordered \gset
update public.webhooks set delivery_order = 'ordered' where id = :'ordered';
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('process_id', 'p1', 'revision', r)))
  from generate_series(2, 5) r \gset
select array_agg(id order by ordering_seq) as d from public.webhook_deliveries where webhook_id = :'ordered' \gset

-- A claim sends the head and parks the rest of its key; neither that nor recording a retry
-- of the head releases anything, so nobody is woken, even with every dispatcher asleep.
select pg_temp.fresh_case(awake => false);
select count(*) from private.claim_due_deliveries('worker-1', 10, 60) \gset
select results_eq(format($$select next_attempt_at = 'infinity' from public.webhook_deliveries where id = any (%L::uuid[]) order by ordering_seq$$, :'d'),
  $$values (false), (true), (true), (true)$$,
  'one process, four revisions: the first in flight, the others parked for their turn');
select pg_temp.fresh_case(awake => false);
select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', (:'d'::uuid[])[1], 'attempt_number', 1, 'outcome', 'failed', 'status', 503, 'duration_ms', 1,
    'next_attempt_at', now() + interval '1 hour')), interval '5 days');
select is(pg_temp.calls(), 0::bigint, 'a claim and a recorded retry of the head release nothing: no wake-up');

-- An ADMIN cancels the head that keeps failing while no dispatcher is awake.
select pg_temp.fresh_case(awake => false);
select tests.authenticate_as(:'admin_a');
select is(public.cancel_webhook_delivery((:'d'::uuid[])[1]), (:'d'::uuid[])[1], 'the ADMIN cancels the head');
select tests.clear_authentication();
select is((select next_attempt_at from public.webhook_deliveries where id = (:'d'::uuid[])[2]), now(), 'the next revision is released');
select is(pg_temp.calls(), 1::bigint, 'and the dispatchers are woken for it, none being awake');
select is((select url from net.calls), 'https://project.supabase.co/functions/v1/webhook-dispatcher', 'at the configured function URL');

-- The same while a dispatcher is awake: it sees the released row in its next look.
select pg_temp.fresh_case(awake => true);
select tests.authenticate_as(:'admin_a');
select is(public.cancel_webhook_delivery((:'d'::uuid[])[2]), (:'d'::uuid[])[2], 'the ADMIN cancels the next head');
select tests.clear_authentication();
select is(pg_temp.calls(), 0::bigint, 'a dispatcher is awake: released, no wake-up');

-- The dispatcher's own release when a head succeeds, while it is awake (the usual case: it
-- claimed within the heartbeat's 2 s): nothing sent.
select count(*) from private.claim_due_deliveries('worker-1', 10, 60) \gset
select pg_temp.fresh_case(awake => true);
select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', (:'d'::uuid[])[3], 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days');
select isnt((select next_attempt_at from public.webhook_deliveries where id = (:'d'::uuid[])[4]), 'infinity'::timestamptz,
  'a head that succeeds releases the last revision');
select is(pg_temp.calls(), 0::bigint, 'which the awake dispatcher takes itself: no wake-up');

-- Cancelling the last of a key releases nothing: nobody is woken.
select pg_temp.fresh_case(awake => false);
select tests.authenticate_as(:'admin_a');
select is(public.cancel_webhook_delivery((:'d'::uuid[])[4]), (:'d'::uuid[])[4], 'the ADMIN cancels the last revision');
select tests.clear_authentication();
select is(pg_temp.calls(), 0::bigint, 'nothing behind it: no wake-up');

-- Switching back to parallel releases every held delivery at once, and wakes a dispatcher.
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('process_id', 'p2', 'revision', r)))
  from generate_series(2, 4) r \gset
select count(*) from private.claim_due_deliveries('worker-1', 10, 60) \gset
select pg_temp.fresh_case(awake => false);
update public.webhooks set delivery_order = 'parallel' where id = :'ordered';
select is((select count(*) from public.webhook_deliveries where webhook_id = :'ordered' and next_attempt_at = 'infinity'), 0::bigint,
  'switched to parallel: nothing is held any more');
select is(pg_temp.calls(), 1::bigint, 'and one wake-up for the whole release');

select setval('private.webhook_dispatcher_heartbeat', 0);
select * from finish();
rollback;

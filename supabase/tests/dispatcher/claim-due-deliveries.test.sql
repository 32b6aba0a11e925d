-- private.claim_due_deliveries: leases, batch limits, the per-endpoint cap (the setting
-- private.webhook_settings.endpoint_concurrency, counted over the leases in flight), the
-- order (the endpoint that waited longest first, each endpoint's oldest first), lease
-- expiry, argument validation, and the signing secrets it hands to the dispatcher.
--
-- Inside one transaction now() does not move and row locks taken by this transaction do
-- not block it, so SKIP LOCKED cannot be shown here (tests/outbox/claim-skips-locked-rows
-- does that on two connections). Exclusivity is shown through the lease instead: a claimed
-- delivery is not due again until its lease expires, whoever asks. Time passing (a lease
-- running out) is tests.time_passes, which moves every stored instant back at once.
begin;
select plan(49);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://one.example.com/hook') as hook_one \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://two.example.com/hook') as hook_two \gset

-- The dispatcher's claim, kept as a table so each call can be inspected.
select tests.create_claims_table();

-- Argument validation ---------------------------------------------------------------
select throws_ok($$select * from private.claim_due_deliveries(null, 50, 60)$$,
  '22023', 'worker must name the dispatcher that claims the work', 'a null worker is refused');
select throws_ok($$select * from private.claim_due_deliveries('  ', 50, 60)$$,
  '22023', 'worker must name the dispatcher that claims the work', 'a blank worker is refused');
select throws_ok($$select * from private.claim_due_deliveries('w', 0, 60)$$,
  '22023', 'batch_size must be between 1 and 1000, got 0', 'batch_size 0 is refused');
select throws_ok($$select * from private.claim_due_deliveries('w', 1001, 60)$$,
  '22023', 'batch_size must be between 1 and 1000, got 1001', 'batch_size 1001 is refused');
select throws_ok($$select * from private.claim_due_deliveries('w', null, 60)$$,
  '22023', 'batch_size must be between 1 and 1000, got <NULL>', 'a null batch_size is refused');
select throws_ok($$select * from private.claim_due_deliveries('w', 10, 0)$$,
  '22023', 'lease_seconds must be between 1 and 3600, got 0', 'lease_seconds 0 is refused');
select throws_ok($$select * from private.claim_due_deliveries('w', 10, 3601)$$,
  '22023', 'lease_seconds must be between 1 and 3600, got 3601', 'lease_seconds 3601 is refused');
-- The cap per endpoint is the database's setting, the same for every dispatcher: no caller passes its own.
select throws_ok($$select * from private.claim_due_deliveries('w', 10, 60, 1)$$,
  '42883', 'function private.claim_due_deliveries(unknown, integer, integer, integer) does not exist',
  'a claim takes no per-call cap (endpoint_concurrency is the cap)');
-- The batch size and the lease are the dispatcher's settings: no default here could disagree.
select throws_ok($$select * from private.claim_due_deliveries('w')$$,
  '42883', 'function private.claim_due_deliveries(unknown) does not exist', 'batch_size has no default');
select throws_ok($$select * from private.claim_due_deliveries('w', 10)$$,
  '42883', 'function private.claim_due_deliveries(unknown, integer) does not exist', 'lease_seconds has no default');

select is((select count(*)::integer from private.claim_due_deliveries('idle-worker', 50, 60)), 0,
  'nothing due: an empty claim');

-- A claim leases the work -----------------------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 1}') as event_1 \gset

insert into claims select 'first', * from private.claim_due_deliveries('worker-1', 10, 60);

select is((select count(*)::integer from claims where call = 'first'), 2,
  'the first claim gets both due deliveries');
select results_eq(
  $$select c.webhook_id, c.url, c.company_id, c.event_id, c.payload, c.event_created_at, c.attempt_number
      from claims c where call = 'first' order by c.url$$,
  format($$select w.id, w.url, w.company_id, e.id, e.payload, e.created_at, 1
             from public.webhooks w, public.webhook_events e
            where e.id = %L order by w.url$$, :'event_1'),
  'each row carries the endpoint, the event body and attempt_number 1');
select is(
  (select count(*)::integer from public.webhook_deliveries
    where lease_owner = 'worker-1'
      and lease_expires_at = now() + interval '60 seconds'
      and next_attempt_at = lease_expires_at
      and attempt_count = 1
      and last_attempt_at = now()
      and state = 'pending'),
  2,
  'the claimed deliveries are leased to worker-1 for 60 s, counted as attempted and not due before the lease ends');

insert into claims select 'second', * from private.claim_due_deliveries('worker-2', 10, 60);
select is((select count(*)::integer from claims where call = 'second'), 0,
  'another worker gets nothing while the lease holds');
insert into claims select 'again', * from private.claim_due_deliveries('worker-1', 10, 60);
select is((select count(*)::integer from claims where call = 'again'), 0,
  'nor does the same worker: a leased delivery is not due');

-- New work goes to whoever asks next, never twice (30 s later).
select tests.time_passes('30 seconds');
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 2}') as event_2 \gset
insert into claims select 'third', * from private.claim_due_deliveries('worker-2', 10, 60);
select set_eq(
  $$select event_id from claims where call = 'third'$$,
  format('values (%L::uuid)', :'event_2'),
  'worker-2 gets only the new event''s deliveries');
select is(
  (select count(*)::integer from claims a join claims b on a.delivery_id = b.delivery_id and a.call < b.call), 0,
  'no delivery was handed out twice');

-- Lease expiry ----------------------------------------------------------------------
-- 31 s later the first claim's leases (60 s) have run out, worker-2's (30 s younger) not.
select tests.time_passes('31 seconds');
insert into claims select 'after-expiry', * from private.claim_due_deliveries('worker-3', 10, 30);
select set_eq($$select event_id from claims where call = 'after-expiry'$$,
  format('values (%L::uuid), (%L::uuid)', :'event_1', :'event_1'),
  'deliveries whose lease expired are claimable again, and only those');
select is((select array_agg(distinct attempt_number) from claims where call = 'after-expiry'), array[2],
  'their attempt_number is now 2');
select results_eq(
  format($$select lease_owner, lease_expires_at, attempt_count from public.webhook_deliveries where event_id = %L$$, :'event_1'),
  $$values ('worker-3'::text, now() + interval '30 seconds', 2), ('worker-3'::text, now() + interval '30 seconds', 2)$$,
  'the new worker holds the lease for its own lease_seconds');

-- Only pending work is claimed: the endpoints are looked at (their ready_at has come), but
-- one delivery of each is closed and the other is due in a minute.
update public.webhook_deliveries
   set state = 'succeeded', next_attempt_at = null, completed_at = now(), lease_owner = null, lease_expires_at = null
 where event_id = :'event_1';
update public.webhook_deliveries set next_attempt_at = now() + interval '1 minute', lease_owner = null, lease_expires_at = null
 where event_id = :'event_2';
update private.webhook_endpoints set ready_at = now() - interval '1 second' where webhook_id in (:'hook_one', :'hook_two');
select is((select count(*)::integer from private.claim_due_deliveries('worker-4', 50, 60)), 0,
  'closed deliveries and deliveries due in the future are not claimed');

-- Longest-waiting endpoint first, each endpoint's oldest first, and batch_size ------------
delete from public.webhook_deliveries;
delete from public.webhook_events;
truncate claims;

select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n))) as enqueued
  from generate_series(1, 3) n \gset
-- 6 deliveries; make them due at distinct times, oldest = n 3 then n 2 then n 1; and
-- hook_two has waited longer than hook_one (its new work was announced 10 minutes earlier).
update public.webhook_deliveries d
   set next_attempt_at = now() - make_interval(mins => (e.payload -> 'data' ->> 'n')::integer)
  from public.webhook_events e
 where e.id = d.event_id;
update private.webhook_endpoint_signals set created_at = now() - interval '10 minutes' where webhook_id = :'hook_two';

insert into claims select 'batch-1', * from private.claim_due_deliveries('worker-1', 4, 60);
select is((select count(*)::integer from claims where call = 'batch-1'), 4, 'batch_size caps a claim (4 of 6)');
select set_eq($$select webhook_id, (payload -> 'data' ->> 'n')::integer from claims where call = 'batch-1'$$,
  format('values (%L::uuid, 3), (%L::uuid, 2), (%L::uuid, 1), (%L::uuid, 3)', :'hook_two', :'hook_two', :'hook_two', :'hook_one'),
  'the endpoint that waited longest is served first, then the next one, each its oldest due deliveries first');
insert into claims select 'batch-2', * from private.claim_due_deliveries('worker-1', 4, 60);
select is((select count(*)::integer from claims where call = 'batch-2'), 2, 'the next claim gets the remaining 2');
select set_eq($$select webhook_id, (payload -> 'data' ->> 'n')::integer from claims where call = 'batch-2'$$,
  format('values (%L::uuid, 2), (%L::uuid, 1)', :'hook_one', :'hook_one'),
  'which are the newest of the endpoint that was cut short');
select is((select count(*)::integer from private.claim_due_deliveries('worker-1', 4, 60)), 0,
  'then nothing is left');

-- endpoint_concurrency: the cap counts leases in flight, across claims ------------------
select tests.time_passes('61 seconds');  -- every lease above has run out
truncate claims;
update private.webhook_settings set endpoint_concurrency = 2;

insert into claims select 'capped', * from private.claim_due_deliveries('worker-1', 10, 60);
select results_eq(
  $$select webhook_id, count(*)::integer from claims where call = 'capped' group by webhook_id order by webhook_id$$,
  format('values (%L::uuid, 2), (%L::uuid, 2)', least(:'hook_one'::uuid, :'hook_two'::uuid), greatest(:'hook_one'::uuid, :'hook_two'::uuid)),
  'endpoint_concurrency 2 with two endpoints of 3 due deliveries each: two per endpoint');
select is(
  (select count(*)::integer from public.webhook_deliveries where lease_expires_at < now() and next_attempt_at <= now()), 2,
  'the rest are left due (under their expired leases)');
select is((select count(*)::integer from private.claim_due_deliveries('worker-2', 10, 60)), 0,
  'another claim gets nothing while both endpoints are at their cap');
select is(
  private.record_delivery_results('worker-1', (select jsonb_agg(jsonb_build_object(
    'delivery_id', delivery_id, 'attempt_number', attempt_number, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 5))
    from (select * from claims where call = 'capped' and webhook_id = :'hook_one' limit 1) c), interval '5 days'),
  1, 'one of hook_one''s requests ends');
insert into claims select 'capped-2', * from private.claim_due_deliveries('worker-2', 10, 60);
select set_eq($$select webhook_id from claims where call = 'capped-2'$$,
  format('values (%L::uuid)', :'hook_one'),
  'the freed slot is filled: one more for hook_one, none for hook_two');
select is(
  (select count(*)::integer from claims a join claims b on a.delivery_id = b.delivery_id and a.call < b.call), 0,
  'the capped claims never overlap');
update private.webhook_settings set endpoint_concurrency = 10;

-- Signing secrets -------------------------------------------------------------------
delete from public.webhook_deliveries;
delete from public.webhook_events;
truncate claims;

select secret as hook_one_secret from private.webhook_secrets where webhook_id = :'hook_one' \gset

select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{}') as secrets_event \gset
insert into claims select 'secrets-1', * from private.claim_due_deliveries('worker-1', 50, 60);
select is((select secrets from claims where call = 'secrets-1' and webhook_id = :'hook_one'), array[:'hook_one_secret'],
  'an endpoint that was never rotated has one secret');
select matches((select secrets[1] from claims where call = 'secrets-1' and webhook_id = :'hook_one'),
  '^whsec_[A-Za-z0-9+/]{43}=$', 'in Standard Webhooks format');
select isnt((select secrets from claims where call = 'secrets-1' and webhook_id = :'hook_two'),
  (select secrets from claims where call = 'secrets-1' and webhook_id = :'hook_one'),
  'each endpoint has its own secret');

select tests.authenticate_as_service_role();
select public.rotate_webhook_secret(:'hook_one') as hook_one_new_secret \gset
select tests.clear_authentication();

select tests.time_passes('61 seconds');
insert into claims select 'secrets-2', * from private.claim_due_deliveries('worker-1', 50, 60);
select is((select secrets from claims where call = 'secrets-2' and webhook_id = :'hook_one'),
  array[:'hook_one_new_secret', :'hook_one_secret'],
  'after a rotation: the new secret first, then the previous one');
select is(array_length((select secrets from claims where call = 'secrets-2' and webhook_id = :'hook_two'), 1), 1,
  'the other endpoint still has one');

update private.webhook_secrets set previous_secret_expires_at = now() - interval '1 second' where webhook_id = :'hook_one';
select tests.time_passes('61 seconds');
insert into claims select 'secrets-3', * from private.claim_due_deliveries('worker-1', 50, 60);
select is((select secrets from claims where call = 'secrets-3' and webhook_id = :'hook_one'),
  array[:'hook_one_new_secret'],
  'once the overlap has expired only the new secret is used');
select is((select attempt_number from claims where call = 'secrets-3' and webhook_id = :'hook_one'), 3,
  'every claim counted one more attempt');

-- Who may claim -----------------------------------------------------------------------
select tests.time_passes('61 seconds');

select tests.authenticate_as_anon();
select throws_ok($$select * from private.claim_due_deliveries('anon-worker', 50, 60)$$,
  '42501', 'permission denied for schema private', 'anon cannot claim');
select tests.clear_authentication();

select tests.authenticate_as_service_role();
select is((select count(*)::integer from private.claim_due_deliveries('service-worker', 50, 60)), 2,
  'the service role can claim');
select tests.clear_authentication();

-- Deliveries of an endpoint disabled meanwhile are cancelled, so never claimed.
select tests.time_passes('61 seconds');
update public.webhooks set is_active = false where id = :'hook_two';
select set_eq($$select webhook_id from private.claim_due_deliveries('worker-5', 50, 60)$$,
  format('values (%L::uuid)', :'hook_one'),
  'a disabled endpoint''s deliveries are not claimed');

-- Everything claimed in this file was claimed exactly as often as counted.
select is((select count(*)::integer from public.webhook_deliveries where attempt_count <> 5 and webhook_id = :'hook_one'), 0,
  'attempt_count counts every claim of a delivery (5 for the one claimed five times)');
select is((select max(attempt_count) from public.webhook_deliveries where webhook_id = :'hook_two'), 4,
  'and 4 for the one cancelled before its fifth');
select is((select state from public.webhook_deliveries where webhook_id = :'hook_two'), 'cancelled',
  'which is cancelled');
select is((select lease_owner from public.webhook_deliveries where webhook_id = :'hook_one'), 'worker-5',
  'the last claim holds the lease');

-- Planned once per session (20261129150200) --------------------------------------------
select is(
  array(select p.proname::text
          from pg_proc p
         where p.oid in ('private.claim_due_deliveries(text, integer, integer)'::regprocedure,
                         'private.record_delivery_results(text, jsonb, interval)'::regprocedure)
           and 'plan_cache_mode=force_generic_plan' = any (p.proconfig)
         order by 1),
  array['claim_due_deliveries', 'record_delivery_results'],
  'the claim and the record keep their generic plans for the session (a redefinition must repeat the setting)');

-- A SQL function that cannot be inlined (it sets a setting, or writes) is planned again at
-- every call; PL/pgSQL keeps its plans for the session. None of those on the dispatcher's
-- path (20261130160000: the signal delete was one, 0.16 ms of every claim). The functions
-- each entry point calls, and what those call, as plpgsql_check reads them.
create extension if not exists plpgsql_check;
select is(
  array(with recursive reached(oid) as (
          select e::oid
            from unnest(array['private.claim_due_deliveries(text, integer, integer)'::regprocedure,
                              'private.record_delivery_results(text, jsonb, interval)'::regprocedure,
                              'private.record_and_claim(text, jsonb, interval, integer, integer)'::regprocedure,
                              'private.release_deliveries(text, uuid[])'::regprocedure]) e
          union
          select d.oid
            from reached r
            join pg_proc p on p.oid = r.oid
            join pg_language l on l.oid = p.prolang and l.lanname = 'plpgsql'
           cross join lateral plpgsql_show_dependency_tb(r.oid::regprocedure) d
           where d.type = 'FUNCTION')
        select p.oid::regprocedure::text
          from reached r
          join pg_proc p on p.oid = r.oid
          join pg_language l on l.oid = p.prolang
         where l.lanname = 'sql' and (p.proconfig is not null or p.prosecdef or p.provolatile = 'v')
         order by 1),
  '{}'::text[],
  'nothing the claim, the record or the release calls is a SQL function planned at every call');

select * from finish();
rollback;

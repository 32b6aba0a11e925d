-- A freed slot of a company goes to its longest-waiting endpoint that could take a request
-- now by its own schedule (private.endpoint_ready_at: work due, circuit, cap, rate). A
-- waiting endpoint met on the way that could not (its deliveries cancelled meanwhile, its
-- circuit opened while it waited) spends no slot: its waiting row is deleted and it goes
-- back on its own schedule. (20261205090100; the waiting itself:
-- company-share-of-requests.test.sql.)
begin;
select plan(11);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://one.a.example/hook') as a1 \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://two.a.example/hook') as a2 \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://three.a.example/hook') as a3 \gset

select tests.create_claims_table();
create function pg_temp.waiting() returns uuid[] language sql as $$
  select coalesce(array_agg(w.webhook_id order by w.since, w.webhook_id), '{}') from private.webhook_company_waiters w
$$;

update private.webhook_settings set company_concurrency = 2;
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 3) n \gset

-- The first claim takes the share (2) from one endpoint and turns the other two away; the
-- next turns that one away too (it has one more due).
insert into claims select 'w1', * from private.claim_due_deliveries('worker-1', 50, 60);
insert into claims select 'w2', * from private.claim_due_deliveries('worker-1', 50, 60);
select is((select count(*)::integer from claims), 2, 'company A has its share of 2 in flight');
select is(cardinality(pg_temp.waiting()), 3, 'and its three endpoints wait for a slot');
select (select webhook_id from claims where call = 'w1' limit 1) as served \gset
select (select w from unnest(pg_temp.waiting()) w where w <> :'served' limit 1) as cancelled,
       (select w from unnest(pg_temp.waiting()) w where w <> :'served' offset 1 limit 1) as tripped \gset
-- In line: the one whose deliveries will be cancelled, then the one whose circuit will open,
-- then the one with work due that could take a request.
update private.webhook_company_waiters set since = since - interval '2 seconds' where webhook_id = :'cancelled';
update private.webhook_company_waiters set since = since - interval '1 second' where webhook_id = :'tripped';
select is(pg_temp.waiting(), array[:'cancelled', :'tripped', :'served']::uuid[], 'in that order');

-- Meanwhile: its ADMIN cancels the first one's deliveries; the second one's circuit opens
-- (its next probe in five minutes).
select array(select id from public.webhook_deliveries
              where webhook_id = :'cancelled' and state = 'pending')::text as to_cancel \gset
select tests.authenticate_as(:'admin_a');
select count(public.cancel_webhook_delivery(i)) from unnest(:'to_cancel'::uuid[]) i;
select tests.clear_authentication();
update private.webhook_endpoints
   set consecutive_failures = 10, failing_since = now(), circuit_opened_at = now(),
       probe_interval_seconds = 300, next_probe_at = now() + interval '5 minutes'
 where webhook_id = :'tripped';

-- One result recorded frees one slot.
select is(private.record_delivery_results('worker-1',
    (select jsonb_agg(jsonb_build_object('delivery_id', c.delivery_id, 'attempt_number', c.attempt_number,
                                         'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
       from (select * from claims where call = 'w1' limit 1) c),
    interval '5 days'),
  1, 'one result recorded: one slot freed');
select is(pg_temp.waiting(), '{}'::uuid[],
  'the slot went past the endpoint with nothing left and the one with its circuit open to the one that could use it; none waits now');
select is((select e.ready_at from private.webhook_endpoints e where e.webhook_id = :'cancelled'), null,
  'the endpoint with nothing left is off the schedule');
select is((select e.ready_at from private.webhook_endpoints e where e.webhook_id = :'tripped'), now() + interval '5 minutes',
  'the endpoint with its circuit open is back on its own schedule: its next probe');
insert into claims select 'w3', * from private.claim_due_deliveries('worker-2', 50, 60);
select results_eq($$select webhook_id, count(*)::integer from claims where call = 'w3' group by 1$$,
  format($$values (%L::uuid, 1)$$, :'served'),
  'the next claim gives the freed slot to the endpoint with work due');

-- With nothing due anywhere, freed slots wake nobody and leave no row behind.
insert into claims select 'w4', * from private.claim_due_deliveries('worker-2', 50, 60);
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('late', n)))
  from generate_series(1, 2) n \gset
insert into claims select 'w5', * from private.claim_due_deliveries('worker-2', 50, 60);
select ok(cardinality(pg_temp.waiting()) > 0, 'at its share again, company A''s endpoints with work due wait');
select array(select id from public.webhook_deliveries
              where company_id = :'company_a' and state = 'pending' and lease_owner is null)::text as to_cancel \gset
select tests.authenticate_as(:'admin_a');
select count(public.cancel_webhook_delivery(i)) from unnest(:'to_cancel'::uuid[]) i;
select tests.clear_authentication();
select is(private.wake_company_waiters(jsonb_build_array(jsonb_build_object('company_id', :'company_a', 'slots', 5))), 0,
  'five freed slots with nothing due wake nobody');
select is(pg_temp.waiting(), '{}'::uuid[], 'and leave no waiting row');

select * from finish();
rollback;

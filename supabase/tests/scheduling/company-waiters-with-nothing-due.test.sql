-- A freed slot of a company wakes its longest-waiting endpoint that has work due; a waiting
-- row met on the way whose endpoint has nothing due any more (its deliveries cancelled
-- meanwhile) is deleted and spends no slot. (20261205090100; the waiting itself:
-- company-share-of-requests.test.sql.)
begin;
select plan(9);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://one.a.example/hook') as a1 \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://two.a.example/hook') as a2 \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://three.a.example/hook') as a3 \gset

create temporary table claims (call text, delivery_id uuid, event_id uuid, webhook_id uuid, company_id uuid,
                               url text, payload jsonb, attempt_number integer, secrets text[],
                               event_created_at timestamptz);
create function pg_temp.waiting() returns uuid[] language sql as $$
  select coalesce(array_agg(w.webhook_id order by w.since, w.webhook_id), '{}') from private.webhook_company_waiters w
$$;

update private.webhook_settings set company_concurrency = 2;
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 3) n \gset

-- The first claim takes the share from one endpoint and turns the other two away; the next
-- turns away the first one too (it has one more due).
insert into claims select 'w1', * from private.claim_due_deliveries('worker-1', 50, 60);
insert into claims select 'w2', * from private.claim_due_deliveries('worker-1', 50, 60);
select is((select count(*)::integer from claims), 2, 'company A has its share of 2 in flight');
select is(cardinality(pg_temp.waiting()), 3, 'and its three endpoints wait for a slot');
select (pg_temp.waiting())[1] as first_waiting, (pg_temp.waiting())[2] as second_waiting,
       (pg_temp.waiting())[3] as third_waiting \gset

-- The longest-waiting one's due deliveries end another way meanwhile: its ADMIN cancels them.
select array(select id from public.webhook_deliveries
              where webhook_id = :'first_waiting' and state = 'pending' and lease_owner is null)::text as to_cancel \gset
select tests.authenticate_as(:'admin_a');
select count(public.cancel_webhook_delivery(i)) from unnest(:'to_cancel'::uuid[]) i;
select tests.clear_authentication();

select is(private.record_delivery_results('worker-1',
    (select jsonb_agg(jsonb_build_object('delivery_id', c.delivery_id, 'attempt_number', c.attempt_number,
                                         'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
       from (select * from claims limit 1) c),
    interval '5 days'),
  1, 'one result recorded: one slot freed');
select is(pg_temp.waiting(), array[:'third_waiting'::uuid],
  'the slot woke the longest-waiting endpoint with work due, the row of the one with nothing due is gone, the third still waits');
select ok((select e.ready_at <= now() from private.webhook_endpoints e where e.webhook_id = :'second_waiting'),
  'the endpoint with work due is ready again');
insert into claims select 'w3', * from private.claim_due_deliveries('worker-2', 50, 60);
select is((select count(*)::integer from claims where call = 'w3'), 1, 'and the next claim takes the freed slot');

-- With nothing due anywhere, a freed slot wakes nobody and leaves no row behind.
insert into claims select 'w4', * from private.claim_due_deliveries('worker-2', 50, 60);
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

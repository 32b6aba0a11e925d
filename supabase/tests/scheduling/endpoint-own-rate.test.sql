-- An ADMIN limits their own endpoint's request rate: public.webhooks.max_requests_per_second
-- (1-10,000; null, the default: no limit of its own). A token bucket in the database, so it
-- holds across dispatchers: it holds a tenth of a second of requests (at least one),
-- refills at the rate, and a claim takes no more of the endpoint's deliveries than it holds. An endpoint short of a
-- token is next looked at when one is there (ready_at), not before, even when a record
-- frees its slots, and never before the bucket's own clock. A first rate starts with a full
-- bucket, a changed one keeps how full it was, and a release gives nothing back (the bound
-- of a second holds); without a rate, nothing changes.
-- Only the company's ADMINs can set it, and a value out of range is refused by a named
-- rule and changes nothing. Time passes with tests.time_passes (now() stands still in a
-- test's transaction).
-- (End to end, a receiver counting requests per second: the "rate" case of
-- supabase/functions/webhook-dispatcher/isolation_test.ts.)
begin;
select plan(32);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://erp.a.example/hook') as hook \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://other.a.example/hook') as other \gset

select tests.create_claims_table();
create function pg_temp.taken(call text, hook uuid) returns integer language sql as $$
  select count(*)::integer from claims c where c.call = taken.call and c.webhook_id = hook
$$;

-- Who may set it, and what ---------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select throws_ok(format($$update public.webhooks set max_requests_per_second = 0 where id = %L$$, :'hook'),
  '23514', 'new row for relation "webhooks" violates check constraint "webhooks_max_requests_per_second_range"',
  'a rate of 0 is refused, naming the rule');
select throws_ok(format($$update public.webhooks set max_requests_per_second = 10001 where id = %L$$, :'hook'),
  '23514', 'new row for relation "webhooks" violates check constraint "webhooks_max_requests_per_second_range"',
  'and one above 10,000');
select tests.authenticate_as(:'admin_b');
update public.webhooks set max_requests_per_second = 1 where id = :'hook';
select tests.clear_authentication();
select results_eq(format($$select w.max_requests_per_second, e.max_requests_per_second
                             from public.webhooks w join private.webhook_endpoints e on e.webhook_id = w.id
                            where w.id = %L$$, :'hook'),
  $$values (null::integer, null::integer)$$,
  'neither changed anything, nor did another company''s ADMIN (RLS)');

select tests.authenticate_as(:'admin_a');
update public.webhooks set max_requests_per_second = 50 where id = :'hook';
select tests.clear_authentication();
select results_eq(format($$select max_requests_per_second, rate_tokens, rate_updated_at
                             from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (50, null::double precision, null::timestamptz)$$,
  'the company''s ADMIN sets 50 a second: the claims'' copy follows, with a full bucket');

-- Claims take no more than the bucket holds ------------------------------------------------------
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 30) n \gset

insert into claims select 'c1', * from private.claim_due_deliveries('worker-1', 50, 60);
select is(pg_temp.taken('c1', :'hook'), 5, 'with 30 due and room for 10 in flight, a claim takes the bucket''s 5 (a tenth of a second)');
select is(pg_temp.taken('c1', :'other'), 10, 'the endpoint beside it, with no rate of its own, takes its 10');
select results_eq(format($$select rate_tokens, rate_updated_at from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (0::double precision, now())$$, 'its bucket is empty as of now');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '0.1 seconds',
  'so it is next looked at when its bucket holds a claim''s worth again (5, its 5 free slots), 0.1 s later');

insert into claims select 'c2', * from private.claim_due_deliveries('worker-2', 50, 60);
select is(pg_temp.taken('c2', :'hook'), 0, 'another dispatcher gets none of it meanwhile: the bucket is the database''s');

select is(private.record_delivery_results('worker-1', (select jsonb_agg(jsonb_build_object(
    'delivery_id', delivery_id, 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
    from claims where call = 'c1' and webhook_id = :'hook'), interval '5 days'),
  5, 'worker-1 records its 5 results');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '0.1 seconds',
  'the freed slots do not make it ready before its bucket refills');

-- Refills --------------------------------------------------------------------------------------
select tests.time_passes('0.04 seconds');
select is(private.endpoint_rate_tokens((select e from private.webhook_endpoints e where e.webhook_id = :'hook')),
  2::double precision, '0.04 s later the bucket holds 2');
insert into claims select 'c3', * from private.claim_due_deliveries('worker-2', 50, 60);
select is(pg_temp.taken('c3', :'hook'), 0, 'claims do not visit it for 2: it is not ready until it holds a claim''s worth');
select tests.time_passes('0.06 seconds');
insert into claims select 'c3b', * from private.claim_due_deliveries('worker-2', 50, 60);
select is(pg_temp.taken('c3b', :'hook'), 5, '0.06 s more, and a claim takes the 5 it holds');

select tests.time_passes('10 seconds');
select is(private.endpoint_rate_tokens((select e from private.webhook_endpoints e where e.webhook_id = :'hook')),
  5::double precision, 'a quiet 10 s fill it to a tenth of a second of requests, no more');
insert into claims select 'c4', * from private.claim_due_deliveries('worker-2', 50, 60);
select is(pg_temp.taken('c4', :'hook'), 5, 'so a claim after a quiet spell takes 5, not a burst of 10 s');

-- A claim whose transaction began before the last one's (its now() is earlier than the
-- clock that claim stored) never moves the bucket's clock back.
update private.webhook_endpoints set rate_updated_at = now() + interval '0.5 seconds', rate_tokens = 5, ready_at = now()
 where webhook_id = :'hook';
insert into claims select 'c4b', * from private.claim_due_deliveries('worker-2', 50, 60);
select is((select rate_updated_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '0.5 seconds',
  'a claim that finds the bucket''s clock ahead of its own now() (a later claim stored it) leaves it there');

select tests.time_passes('61 seconds');  -- every lease runs out, the bucket is full
update private.webhook_endpoints set rate_updated_at = now() + interval '0.5 seconds', rate_tokens = 0
 where webhook_id = :'hook';
select is(private.endpoint_ready_at((select e from private.webhook_endpoints e where e.webhook_id = :'hook'), false),
  now() + interval '0.6 seconds',
  'an empty bucket whose clock is 0.5 s ahead of now() holds a claim''s worth (5) 0.1 s after its clock, not after now()');

-- A rate whose wait is no whole number of microseconds: 3 a second.
select tests.time_passes('61 seconds');  -- every lease runs out
update public.webhooks set max_requests_per_second = 3 where id = :'hook';
insert into claims select 'c5', * from private.claim_due_deliveries('worker-3', 50, 60);
select is(pg_temp.taken('c5', :'hook'), 1, 'at 3 a second the bucket holds one request');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '0.333334 seconds',
  'and the endpoint waits a third of a second, rounded up to the microsecond');
select tests.time_passes('0.333334 seconds');
insert into claims select 'c5b', * from private.claim_due_deliveries('worker-3', 50, 60);
select is(pg_temp.taken('c5b', :'hook'), 1, 'so at that moment a claim finds the token there');

-- A new rate, and none -------------------------------------------------------------------------
select tests.time_passes('61 seconds');  -- every lease runs out
select tests.authenticate_as(:'admin_a');
update public.webhooks set max_requests_per_second = 100 where id = :'hook';
select tests.clear_authentication();
select results_eq(format($$select rate_tokens, ready_at <= now() from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (10::double precision, true)$$, 'raised to 100 a second when its bucket was full: full again (10), and due at once');
insert into claims select 'c6', * from private.claim_due_deliveries('worker-3', 50, 60);
select is(pg_temp.taken('c6', :'hook'), 10, 'a claim takes its bucket of 10, which its concurrency allows');

-- A release gives no tokens back: handed back after the bucket had refilled, they would let
-- a second see the rate plus two tenths.
select is(private.release_deliveries('worker-3', array(select delivery_id from claims where call = 'c6' and webhook_id = :'hook')),
  10, 'the dispatcher gives the 10 back unsent (shutting down)');
select results_eq(format($$select rate_tokens, ready_at from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  $$values (0::double precision, now() + interval '0.1 seconds')$$,
  'its bucket stays empty: they go when it has refilled, 0.1 s later');
select tests.time_passes('0.1 seconds');
insert into claims select 'c6b', * from private.claim_due_deliveries('worker-3', 50, 60);
select is(pg_temp.taken('c6b', :'hook'), 10, 'and then a claim sends them');

-- A changed rate keeps how full the bucket is: lowering it sends no burst.
select is(private.record_delivery_results('worker-3', (select jsonb_agg(jsonb_build_object(
    'delivery_id', delivery_id, 'attempt_number', attempt_number, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
    from claims where call = 'c6b' and webhook_id = :'hook'), interval '5 days'),
  10, 'the 10 are recorded: slots free, bucket empty');
select tests.authenticate_as(:'admin_a');
update public.webhooks set max_requests_per_second = 20 where id = :'hook';
select tests.clear_authentication();
insert into claims select 'c6c', * from private.claim_due_deliveries('worker-3', 50, 60);
select is(pg_temp.taken('c6c', :'hook'), 0, 'lowered to 20 a second with an empty bucket: still empty, a claim takes nothing');

select tests.authenticate_as(:'admin_a');
update public.webhooks set max_requests_per_second = null where id = :'hook';
select tests.clear_authentication();
select is(private.endpoint_rate_tokens((select e from private.webhook_endpoints e where e.webhook_id = :'hook')),
  null, 'without a rate of its own, it has no bucket');

-- Set when the endpoint is created; refused when out of range.
select tests.authenticate_as(:'admin_a');
insert into public.webhooks (company_id, trigger_type, url, max_requests_per_second)
values (:'company_a', 'PROCESS_REVISED', 'https://new.a.example/hook', 2);
select throws_ok(format($$insert into public.webhooks (company_id, trigger_type, url, max_requests_per_second)
                          values (%L, 'PROCESS_REVISED', 'https://bad.a.example/hook', -1)$$, :'company_a'),
  '23514', 'new row for relation "webhooks" violates check constraint "webhooks_max_requests_per_second_range"',
  'a new endpoint with a rate of -1 is refused');
select tests.clear_authentication();
select is((select count(*)::integer from public.webhooks where url = 'https://bad.a.example/hook'), 0, 'and not created');
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n)))
  from generate_series(1, 5) n \gset
select is((select count(*)::integer from private.claim_due_deliveries('worker-4', 50, 60) c
            where c.url = 'https://new.a.example/hook'), 1,
  'an endpoint created at 2 a second has it where claims read it: a claim takes 1 of its 5 (a bucket of one)');

select * from finish();
rollback;

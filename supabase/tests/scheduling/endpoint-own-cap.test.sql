-- An ADMIN caps their own endpoint's requests in flight: public.webhooks.max_concurrent_requests
-- (1-1000; null, the default: the deployment's cap). It holds like the deployment's cap
-- (endpoint-concurrency-cap.test.sql): counted in the database over the endpoint's
-- unexpired leases, whoever holds them, so no claim of any dispatcher takes the endpoint
-- past it. It wins over the start and over what the endpoint has earned; the deployment's
-- cap still bounds a higher one. Changing it applies at the next claim: raised, the
-- endpoint is due again at once. Only the company's ADMINs can set it, and a value out of
-- range is refused by a named rule and changes nothing.
-- (Two dispatchers against a real receiver: tests/outbox/endpoint-cap-across-claimers.test.ts.)
begin;
select plan(24);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://erp.a.example/hook') as hook \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://other.a.example/hook') as other \gset

create function pg_temp.in_flight(hook uuid) returns integer language sql as $$
  select count(*)::integer from public.webhook_deliveries d
   where d.webhook_id = hook and d.state = 'pending' and d.lease_owner is not null and d.lease_expires_at > now()
$$;
select tests.create_claims_table();
grant all on claims to authenticated;

select results_eq($$select endpoint_concurrency, endpoint_concurrency_start from private.webhook_settings$$,
  $$values (50, 10)$$, 'the deployment''s defaults: endpoints start at 10 and may earn up to 50');
select is((select max_concurrent_requests from public.webhooks where id = :'hook'), null,
  'an endpoint has no cap of its own unless an ADMIN sets one');

-- Who may set it, and what ---------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select throws_ok(format($$update public.webhooks set max_concurrent_requests = 0 where id = %L$$, :'hook'),
  '23514', 'new row for relation "webhooks" violates check constraint "webhooks_max_concurrent_requests_range"',
  'a cap of 0 is refused, naming the rule');
select throws_ok(format($$update public.webhooks set max_concurrent_requests = 1001 where id = %L$$, :'hook'),
  '23514', 'new row for relation "webhooks" violates check constraint "webhooks_max_concurrent_requests_range"',
  'and one above 1000');
select is((select max_concurrent_requests from public.webhooks where id = :'hook'), null, 'neither changed anything');

select tests.authenticate_as(:'admin_b');
update public.webhooks set max_concurrent_requests = 1 where id = :'hook';
select tests.authenticate_as(:'member_a');
update public.webhooks set max_concurrent_requests = 1 where id = :'hook';
select tests.clear_authentication();
select results_eq(format($$select w.max_concurrent_requests, e.max_concurrent_requests
                             from public.webhooks w join private.webhook_endpoints e on e.webhook_id = w.id
                            where w.id = %L$$, :'hook'),
  $$values (null::integer, null::integer)$$,
  'another company''s ADMIN and a MEMBER of the company change nothing (RLS)');

select tests.authenticate_as(:'admin_a');
update public.webhooks set max_concurrent_requests = 2 where id = :'hook';
select tests.clear_authentication();
select is((select e.max_concurrent_requests from private.webhook_endpoints e where e.webhook_id = :'hook'), 2,
  'the company''s ADMIN sets 2, and the claims'' copy follows');

-- Claims never pass it ------------------------------------------------------------------------
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 20) n \gset

insert into claims select 'w1', * from private.claim_due_deliveries('worker-1', 50, 60);
select results_eq($$select webhook_id, count(*)::integer from claims where call = 'w1' group by 1 order by 1$$,
  format($$select * from (values (%L::uuid, 2), (%L::uuid, 10)) v order by 1$$, :'hook', :'other'),
  'with 20 due each, a claim takes 2 for the capped endpoint (below the start of 10) and 10 for the other');
insert into claims select 'w2', * from private.claim_due_deliveries('worker-2', 50, 60);
select is((select count(*)::integer from claims where call = 'w2' and webhook_id = :'hook'), 0,
  'another dispatcher takes none of it: its cap is counted over both dispatchers'' leases');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '60 seconds',
  'at its own cap, the endpoint is next looked at when its earliest lease runs out');

-- Successes while the window is full earn nothing past it.
select is(private.record_delivery_results('worker-1', (select jsonb_agg(jsonb_build_object(
    'delivery_id', delivery_id, 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
    from claims where call = 'w1' and webhook_id = :'hook'), interval '5 days'),
  2, 'worker-1 records both, successes with the window full');
select is((select concurrency_limit from private.webhook_endpoints where webhook_id = :'hook'), 2,
  'what it has earned stays at its cap');
insert into claims select 'w3', * from private.claim_due_deliveries('worker-2', 50, 60);
select is((select count(*)::integer from claims where call = 'w3' and webhook_id = :'hook'), 2,
  'the next claim takes 2 again');

select tests.authenticate_as(:'admin_a');
select results_eq(format($$select concurrency from public.webhook_endpoint_health where webhook_id = %L$$, :'hook'),
  $$values (2)$$, 'the ADMIN''s health view shows 2 as the endpoint''s concurrency');

-- Raised: due again at once, and claims take up to the new cap.
update public.webhooks set max_concurrent_requests = 5 where id = :'hook';
select tests.clear_authentication();
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now(),
  'raised to 5 with 2 in flight, the endpoint is due again at once');
insert into claims select 'w4', * from private.claim_due_deliveries('worker-3', 50, 60);
select is((select count(*)::integer from claims where call = 'w4' and webhook_id = :'hook'), 3,
  'a claim takes the 3 more it may have');
select is(pg_temp.in_flight(:'hook'), 5, '5 in flight, across two dispatchers');

-- Removed: the deployment's rule again (what it earned, never below the start).
update public.webhooks set max_concurrent_requests = null where id = :'hook';
select is(private.endpoint_concurrency((select concurrency_limit from private.webhook_endpoints where webhook_id = :'hook'), null),
  10, 'without its own cap the endpoint may have the start again, 10');
insert into claims select 'w5', * from private.claim_due_deliveries('worker-3', 50, 60);
select is((select count(*)::integer from claims where call = 'w5' and webhook_id = :'hook'), 5,
  'and a claim takes 5 more');

-- The deployment's cap bounds an endpoint that asks for more.
update public.webhooks set max_concurrent_requests = 500 where id = :'hook';
update private.webhook_settings set endpoint_concurrency = 12;
select is(private.endpoint_concurrency(400, 500), 12, 'an endpoint''s cap of 500 under a deployment cap of 12 gives 12');
update private.webhook_settings set endpoint_concurrency = 50;

-- Set when the endpoint is created.
select tests.authenticate_as(:'admin_a');
insert into public.webhooks (company_id, trigger_type, url, max_concurrent_requests)
values (:'company_a', 'PROCESS_REVISED', 'https://new.a.example/hook', 1);
select throws_ok(format($$insert into public.webhooks (company_id, trigger_type, url, max_concurrent_requests)
                          values (%L, 'PROCESS_REVISED', 'https://bad.a.example/hook', -5)$$, :'company_a'),
  '23514', 'new row for relation "webhooks" violates check constraint "webhooks_max_concurrent_requests_range"',
  'a new endpoint with a cap of -5 is refused');
select tests.clear_authentication();
select is((select count(*)::integer from public.webhooks where url = 'https://bad.a.example/hook'), 0,
  'and not created');
select is((select e.max_concurrent_requests from private.webhook_endpoints e
             join public.webhooks w on w.id = e.webhook_id where w.url = 'https://new.a.example/hook'), 1,
  'an endpoint created with a cap of 1 has it where claims read it');
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n)))
  from generate_series(1, 5) n \gset
select is((select count(*)::integer from private.claim_due_deliveries('worker-4', 50, 60) c
            where c.url = 'https://new.a.example/hook'), 1,
  'and a claim takes one of its 5 due deliveries');

select * from finish();
rollback;

-- The cap on an endpoint's requests in flight is the setting
-- private.webhook_settings.endpoint_concurrency, the same for every dispatcher, counted in
-- the database at every claim over the endpoint's unexpired leases, whoever holds them: no
-- claim takes an endpoint past it. Each endpoint has its own cap. A lease that ran out
-- (its dispatcher died) no longer counts; a record or a release frees its slot at once.
-- (Two concurrent claimers: tests/outbox/endpoint-cap-across-claimers.test.ts.)
begin;
select plan(15);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://one.example.com/hook') as hook \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://two.example.com/hook') as other \gset

select throws_ok($$update private.webhook_settings set endpoint_concurrency = 0$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_endpoint_concurrency_range"',
  'endpoint_concurrency below 1 is refused, naming the rule');
select throws_ok($$update private.webhook_settings set endpoint_concurrency = 1001$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_endpoint_concurrency_range"',
  'and above 1000');
update private.webhook_settings set endpoint_concurrency = 3;

create function pg_temp.in_flight(hook uuid) returns integer language sql as $$
  select count(*)::integer from public.webhook_deliveries d
   where d.webhook_id = hook and d.state = 'pending' and d.lease_owner is not null and d.lease_expires_at > now()
$$;
select tests.create_claims_table();

select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n))) from generate_series(1, 10) n \gset

insert into claims select 'w1', * from private.claim_due_deliveries('worker-1', 50, 60);
select results_eq($$select webhook_id, count(*)::integer from claims where call = 'w1' group by 1 order by 1$$,
  format($$select * from (values (%L::uuid, 3), (%L::uuid, 3)) v order by 1$$, :'hook', :'other'),
  'with 10 due each, a claim of 50 takes 3 per endpoint: each endpoint has its own cap');

-- Another dispatcher, its cap counted against the first one's leases.
insert into claims select 'w2', * from private.claim_due_deliveries('worker-2', 50, 60);
select is((select count(*)::integer from claims where call = 'w2'), 0,
  'another worker gets nothing: both endpoints are at their cap');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now() + interval '60 seconds',
  'an endpoint at its cap is next looked at when its earliest lease runs out');

-- A record frees a slot at once.
select is(private.record_delivery_results('worker-1', (select jsonb_agg(jsonb_build_object(
    'delivery_id', delivery_id, 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
    from (select * from claims where call = 'w1' and webhook_id = :'hook' limit 1) c), interval '5 days'),
  1, 'worker-1 records one of hook''s results');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now(),
  'the freed slot makes the endpoint ready now');
insert into claims select 'w2b', * from private.claim_due_deliveries('worker-2', 50, 60);
select results_eq($$select webhook_id, count(*)::integer from claims where call = 'w2b' group by 1$$,
  format($$values (%L::uuid, 1)$$, :'hook'),
  'worker-2 fills that one slot, no more');
select is(pg_temp.in_flight(:'hook'), 3, 'hook has 3 in flight, across two workers');

-- A release frees slots too.
select is(private.release_deliveries('worker-1', array(select delivery_id from claims where call = 'w1' and webhook_id = :'other')), 3,
  'worker-1 gives back its 3 leases of the other endpoint');
insert into claims select 'w3', * from private.claim_due_deliveries('worker-3', 2, 60);
select results_eq($$select webhook_id, count(*)::integer from claims where call = 'w3' group by 1$$,
  format($$values (%L::uuid, 2)$$, :'other'),
  'a claim of 2 takes 2 of the released slots (batch_size still bounds)');
insert into claims select 'w3b', * from private.claim_due_deliveries('worker-3', 50, 60);
select results_eq($$select webhook_id, count(*)::integer from claims where call = 'w3b' group by 1$$,
  format($$values (%L::uuid, 1)$$, :'other'),
  'and the next claim the last one');

-- Leases that ran out no longer count.
select tests.time_passes('61 seconds');
select is(pg_temp.in_flight(:'hook') + pg_temp.in_flight(:'other'), 0, 'a minute later every lease has run out');
insert into claims select 'w4', * from private.claim_due_deliveries('worker-4', 50, 60);
select results_eq($$select webhook_id, count(*)::integer from claims where call = 'w4' group by 1 order by 1$$,
  format($$select * from (values (%L::uuid, 3), (%L::uuid, 3)) v order by 1$$, :'hook', :'other'),
  'a claim takes up to the cap again, expired leases included (they are due again)');

-- The cap is read at every claim.
update private.webhook_settings set endpoint_concurrency = 1;
select tests.time_passes('61 seconds');
insert into claims select 'w5', * from private.claim_due_deliveries('worker-5', 50, 60);
select results_eq($$select webhook_id, count(*)::integer from claims where call = 'w5' group by 1 order by 1$$,
  format($$select * from (values (%L::uuid, 1), (%L::uuid, 1)) v order by 1$$, :'hook', :'other'),
  'with endpoint_concurrency 1, one per endpoint');
update private.webhook_settings set endpoint_concurrency = 10;
select * from finish();
rollback;

-- A company holds at most its share of the requests in flight (company_concurrency, 200 by
-- default), its endpoints together, across all dispatchers: counted over the company's
-- unexpired leases, whoever holds them. An endpoint with due work that a claim turns away
-- for it waits off the schedule (private.webhook_company_waiters) until a record or a
-- release frees a slot of its company, or at the latest until the company's earliest lease
-- runs out; then it is ready again at the place in line it had. Another company is never
-- held up by it. (20261204090000; end to end: "a company's many dead endpoints" in
-- supabase/functions/webhook-dispatcher/isolation_test.ts.)
begin;
select plan(24);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://one.a.example/hook') as a1 \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://two.a.example/hook') as a2 \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://three.a.example/hook') as a3 \gset
select tests.create_webhook(:'company_b', 'PROCESS_CREATED', 'https://erp.b.example/hook') as b1 \gset

select tests.create_claims_table();
create function pg_temp.taken(call text, company uuid) returns integer language sql as $$
  select count(*)::integer from claims c where c.call = taken.call and c.company_id = company
$$;
create function pg_temp.succeeded(ids uuid[]) returns jsonb language sql as $$
  select jsonb_agg(jsonb_build_object('delivery_id', c.delivery_id, 'attempt_number', c.attempt_number,
                                      'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
    from claims c where c.delivery_id = any (ids)
$$;

-- The knob -------------------------------------------------------------------------------------
select is((select company_concurrency from private.webhook_settings), 200,
  'by default a company may have 200 requests in flight');
select throws_ok($$update private.webhook_settings set company_concurrency = 0$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_company_concurrency_range"',
  'a share of 0 is refused, naming the rule');
select is((select company_concurrency from private.webhook_settings), 200, 'and changes nothing');
update private.webhook_settings set company_concurrency = 15;

-- A claim never takes a company past its share ---------------------------------------------------
-- 20 events to company A's three endpoints (60 deliveries; each endpoint may have 10), 5 to B.
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 20) n \gset
select count(private.enqueue_webhook_event(:'company_b', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 5) n \gset

insert into claims select 'w1', * from private.claim_due_deliveries('worker-1', 50, 60);
select is(pg_temp.taken('w1', :'company_a'), 15, 'company A''s three endpoints could take 30: a claim takes its share, 15');
select is(pg_temp.taken('w1', :'company_b'), 5, 'company B gets all of its 5 in the same claim');
select is(private.company_in_flight(:'company_a'), 15, 'company A has 15 in flight');
select results_eq(format($$select count(*)::integer, min(w.since) <= now(), bool_and(e.ready_at = now() + interval '60 seconds')
                             from private.webhook_company_waiters w
                             join private.webhook_endpoints e on e.webhook_id = w.webhook_id
                            where w.company_id = %L$$, :'company_a'),
  $$values (1, true, true)$$,
  'the endpoint the claim turned away waits for a slot of its company, off the schedule until its company''s earliest lease runs out');

insert into claims select 'w2', * from private.claim_due_deliveries('worker-2', 50, 60);
select is(pg_temp.taken('w2', :'company_a'), 0, 'another dispatcher takes none of company A: its share is counted over both');
select is((select count(*)::integer from private.webhook_company_waiters where company_id = :'company_a'), 2,
  'the endpoint that got only part of its due work waits too, once the next claim meets it');
select is((select count(*)::integer from private.webhook_company_waiters where company_id = :'company_b'), 0,
  'company B has no endpoint waiting');

-- Company B is never held up by A's share.
select count(private.enqueue_webhook_event(:'company_b', 'PROCESS_CREATED', jsonb_build_object('late', n)))
  from generate_series(1, 2) n \gset
insert into claims select 'w3', * from private.claim_due_deliveries('worker-2', 50, 60);
select is(pg_temp.taken('w3', :'company_b'), 2, 'while A is at its share, B''s new deliveries are claimed at once');

-- A record frees slots: as many waiting endpoints are ready again --------------------------------
select is(private.record_delivery_results('worker-1',
    pg_temp.succeeded(array(select delivery_id from claims where call = 'w1' and company_id = :'company_a' limit 1)),
    interval '5 days'),
  1, 'worker-1 records one of company A''s results');
select results_eq(format($$select count(*)::integer from private.webhook_company_waiters where company_id = %L$$, :'company_a'),
  $$values (1)$$, 'one slot freed: one waiting endpoint woken, the other still waits');
select is((select count(*)::integer from private.webhook_endpoints e
            where e.company_id = :'company_a' and e.ready_at <= now()
              and not exists (select 1 from private.webhook_company_waiters w where w.webhook_id = e.webhook_id)
              and e.webhook_id in (:'a1', :'a2', :'a3')), 2,
  'the woken one is ready again (at its old place in line), as is the endpoint whose result freed the slot');
select is(private.record_delivery_results('worker-1',
    pg_temp.succeeded(array(select delivery_id from claims where call = 'w1' and company_id = :'company_a' offset 1 limit 3)),
    interval '5 days'),
  3, 'three more results recorded');
select is((select count(*)::integer from private.webhook_company_waiters where company_id = :'company_a'), 0,
  'they wake the other waiting endpoint');
insert into claims select 'w4', * from private.claim_due_deliveries('worker-3', 50, 60);
select is(pg_temp.taken('w4', :'company_a'), 4, 'the next claim takes the 4 freed slots and no more');

-- A release frees slots too -----------------------------------------------------------------------
insert into claims select 'w5', * from private.claim_due_deliveries('worker-3', 50, 60);
select is(pg_temp.taken('w5', :'company_a'), 0, 'at its share again, company A gets nothing more');
select count(*)::integer as waiting_before from private.webhook_company_waiters where company_id = :'company_a' \gset
select ok(:waiting_before >= 1, 'and its endpoints with due work wait');
select is(private.release_deliveries('worker-3', array(select delivery_id from claims where call = 'w4' limit 2)), 2,
  'worker-3 gives two back unsent');
select is((select count(*)::integer from private.webhook_company_waiters where company_id = :'company_a'),
  greatest(:waiting_before - 2, 0), 'which wakes as many waiting endpoints as it freed slots');
insert into claims select 'w6', * from private.claim_due_deliveries('worker-4', 50, 60);
select is(pg_temp.taken('w6', :'company_a'), 2, 'and the next claim takes those two slots');

-- A deleted endpoint waits no more; nobody else sees the waiters ---------------------------------
delete from public.webhooks where id in (:'a1', :'a2', :'a3');
select is((select count(*)::integer from private.webhook_company_waiters where company_id = :'company_a'), 0,
  'deleted endpoints leave no waiting row');

select tests.authenticate_as(:'admin_a');
select throws_ok($$select * from private.webhook_company_waiters$$, '42501', null,
  'an ADMIN cannot read the waiting endpoints (the private schema is closed)');
select tests.clear_authentication();

select * from finish();
rollback;

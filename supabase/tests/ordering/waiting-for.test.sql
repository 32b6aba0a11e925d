-- public.waiting_for(delivery), readable as a column of webhook_deliveries
-- (select=*,waiting_for): for a delivery an ordered endpoint holds back, the delivery of
-- its key it waits for (the earliest one still pending); null for a delivery in flight, one
-- that is next, one that has ended, and every delivery of a parallel endpoint. It runs
-- with the caller's rights: it never names a delivery the caller cannot see.
begin;
select plan(11);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/ordered') as ordered \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/parallel') as parallel \gset
update public.webhooks set delivery_order = 'ordered' where id = :'ordered';
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('process_id', 'p1', 'revision', r)))
  from generate_series(2, 4) r \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p2", "revision": 2}') as p2_event \gset
select array_agg(id order by ordering_seq) as d from public.webhook_deliveries where webhook_id = :'ordered' and ordering_key = 'p1' \gset
select id as p2 from public.webhook_deliveries where webhook_id = :'ordered' and event_id = :'p2_event' \gset

select tests.authenticate_as(:'admin_a');
select results_eq(format($$select d.waiting_for from public.webhook_deliveries d where d.id = any (%L::uuid[]) order by d.ordering_seq$$, :'d'),
  format($$values (null::uuid), (%L::uuid), (%L::uuid)$$, (:'d'::uuid[])[1], (:'d'::uuid[])[1]),
  'before any claim: p1''s revision 2 waits for nothing; 3 and 4 wait for revision 2');
select is((select d.waiting_for from public.webhook_deliveries d where d.id = :'p2'), null, 'another key''s first waits for nothing');
select is((select count(*)::integer from public.webhook_deliveries d where d.webhook_id = :'parallel' and d.waiting_for is not null), 0,
  'deliveries of a parallel endpoint never wait');
select tests.clear_authentication();

select count(*) from private.claim_due_deliveries('worker-1', 10, 60) \gset
select tests.authenticate_as(:'admin_a');
select results_eq(format($$select d.waiting_for from public.webhook_deliveries d where d.id = any (%L::uuid[]) order by d.ordering_seq$$, :'d'),
  format($$values (null::uuid), (%L::uuid), (%L::uuid)$$, (:'d'::uuid[])[1], (:'d'::uuid[])[1]),
  'revision 2 in flight waits for nothing; the parked ones wait for it');
select tests.clear_authentication();

select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
  'delivery_id', (:'d'::uuid[])[1], 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
select tests.authenticate_as(:'admin_a');
select results_eq(format($$select d.waiting_for from public.webhook_deliveries d where d.id = any (%L::uuid[]) order by d.ordering_seq$$, :'d'),
  format($$values (null::uuid), (null::uuid), (%L::uuid)$$, (:'d'::uuid[])[2]),
  'revision 2 succeeded: it waits for nothing (ended), 3 is next, 4 waits for 3');
select tests.clear_authentication();

-- Cancelling the head the others wait for.
select tests.authenticate_as(:'admin_a');
select public.cancel_webhook_delivery((:'d'::uuid[])[2]) \gset
select is((select d.waiting_for from public.webhook_deliveries d where d.id = (:'d'::uuid[])[3]), null,
  'revision 3 cancelled: revision 4 waits for nothing any more');
select tests.clear_authentication();

-- Only what the caller may see: a row made by hand, pending in A's key p1, numbered last.
select jsonb_build_object('id', gen_random_uuid(), 'company_id', :'company_a', 'webhook_id', :'ordered',
                          'state', 'pending', 'ordering_key', 'p1', 'ordering_seq', 1000000) as forged \gset
select tests.authenticate_as(:'admin_b');
select is((select count(*)::integer from public.webhook_deliveries d where d.waiting_for is not null), 0,
  'another company''s ADMIN sees none of these deliveries');
select is(public.waiting_for(jsonb_populate_record(null::public.webhook_deliveries, :'forged'::jsonb)),
  null, 'and a hand-made row of A''s key names nothing: waiting_for reads with the caller''s rights');
select tests.clear_authentication();
select isnt(public.waiting_for(jsonb_populate_record(null::public.webhook_deliveries, :'forged'::jsonb)),
  null, '(the same row, read by the owner of the tables, does name one: the check above can fail)');

select tests.authenticate_as_anon();
select throws_ok($$select public.waiting_for(d) from public.webhook_deliveries d$$,
  '42501', 'permission denied for table webhook_deliveries', 'anon can read neither the deliveries');
select throws_ok($$select public.waiting_for(null::public.webhook_deliveries)$$,
  '42501', 'permission denied for function waiting_for', 'nor call waiting_for');
select tests.clear_authentication();

select * from finish();
rollback;

-- Switching an ordered endpoint to parallel releases what it held for order: its pending
-- deliveries lose their key and number, the parked ones are due at once, and the endpoint
-- is ready now; deliveries in flight keep their lease; ended ones keep their key (history).
-- Switching to ordered applies to the deliveries created from then on.
-- A large backlog is released in steps: cancel_batch_size by the switch itself, the rest a
-- chunk per claim (migration 20261201090300).
begin;
select plan(19);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/hook') as hook \gset
update public.webhooks set delivery_order = 'ordered' where id = :'hook';
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('process_id', 'p1', 'revision', r)))
  from generate_series(2, 5) r \gset
select array_agg(id order by ordering_seq) as d from public.webhook_deliveries where webhook_id = :'hook' \gset

-- Revision 2 succeeded, 3 is in flight, 4 and 5 parked.
select private.record_delivery_results('worker-1', jsonb_agg(jsonb_build_object(
         'delivery_id', c.delivery_id, 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days')
  from private.claim_due_deliveries('worker-1', 10, 60) c \gset
select count(*) from private.claim_due_deliveries('worker-1', 10, 60) \gset
select results_eq(format($$select state::text, next_attempt_at from public.webhook_deliveries where id = any (%L::uuid[]) order by ordering_seq$$, :'d'),
  $$values ('succeeded'::text, null::timestamptz), ('pending', now() + interval '60 seconds'), ('pending', 'infinity'), ('pending', 'infinity')$$,
  'revision 2 delivered, 3 in flight, 4 and 5 parked');

select tests.authenticate_as(:'admin_a');
update public.webhooks set delivery_order = 'parallel' where id = :'hook';
select tests.clear_authentication();

select results_eq(format($$select ordering_key, ordering_seq is null, next_attempt_at, lease_owner from public.webhook_deliveries where id = any (%L::uuid[]) order by next_attempt_at desc$$,
                         (:'d'::uuid[])[2:4]),
  $$values (null::text, true, now() + interval '60 seconds', 'worker-1'::text), (null, true, now(), null), (null, true, now(), null)$$,
  'switched to parallel: the pending ones lose key and number; the parked ones are due now; the one in flight keeps its lease');
select results_eq(format($$select ordering_key, ordering_seq is not null from public.webhook_deliveries where id = %L$$, (:'d'::uuid[])[1]),
  $$values ('p1'::text, true)$$,
  'the delivered one keeps its key and number');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'hook'), now(), 'the endpoint is ready now');
select set_eq($$select delivery_id from private.claim_due_deliveries('worker-2', 10, 60)$$,
  format($$values (%L::uuid), (%L::uuid)$$, (:'d'::uuid[])[3], (:'d'::uuid[])[4]),
  'the next claim sends revisions 4 and 5 together, while 3 is still in flight');

-- New deliveries of a parallel endpoint have no key.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 6}') as r6_event \gset
select is((select ordering_key from public.webhook_deliveries where event_id = :'r6_event'), null, 'a new delivery has no key');

-- Back to ordered: from now on.
select tests.authenticate_as(:'admin_a');
update public.webhooks set delivery_order = 'ordered' where id = :'hook';
select tests.clear_authentication();
select is((select ordering_key from public.webhook_deliveries where event_id = :'r6_event'), null,
  'switched back to ordered: the pending delivery created in parallel stays unkeyed');
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 7}') as r7_event \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 8}') as r8_event \gset
select is((select count(*)::integer from public.webhook_deliveries where event_id in (:'r7_event', :'r8_event') and ordering_key = 'p1'), 2,
  'the deliveries created from then on are keyed');
select set_eq($$select event_id from private.claim_due_deliveries('worker-3', 10, 60)$$,
  format($$values (%L::uuid), (%L::uuid)$$, :'r6_event', :'r7_event'),
  'the next claim sends the unkeyed one and the first of the key (3, 4, 5 are in flight, unkeyed)');
select is((select next_attempt_at from public.webhook_deliveries where event_id = :'r8_event'), 'infinity'::timestamptz,
  'and parks the second');

-- A large backlog: a chunk now, the rest by the claims ------------------------------------------
update private.webhook_settings set cancel_batch_size = 3;
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://big.example.com/hook') as big \gset
update public.webhooks set delivery_order = 'ordered' where id = :'big';
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('process_id', 'k' || (n % 2), 'n', n)))
  from generate_series(1, 8) n \gset
-- A claim sends the first of each key and parks the rest.
select count(*) from private.claim_due_deliveries('worker-4', 10, 60) \gset
select results_eq(format($$select count(*) filter (where lease_owner is not null)::integer,
                                  count(*) filter (where next_attempt_at = 'infinity')::integer
                             from public.webhook_deliveries where webhook_id = %L$$, :'big'),
  $$values (2, 6)$$, '8 ordered deliveries of two keys: 2 in flight, 6 parked');
select tests.time_passes('1 second');

select tests.authenticate_as(:'admin_a');
update public.webhooks set delivery_order = 'parallel' where id = :'big';
select tests.clear_authentication();
select results_eq(format($$select count(*)::integer from public.webhook_deliveries where webhook_id = %L and ordering_key is not null$$, :'big'),
  $$values (5)$$, 'the switch releases cancel_batch_size (3) itself');
select results_eq(format($$select through from private.webhook_order_releases where webhook_id = %L$$, :'big'),
  $$values ('infinity'::timestamptz)$$, 'and leaves the rest to the claims: every keyed one, while the endpoint stays parallel');
select is(private.next_dispatch_at(), now(), 'a dispatcher is due now');

-- Ordered again meanwhile: what is created from then on keeps its key; here one of a key
-- whose old deliveries are not all released yet (k1), which a claim parks behind them.
select tests.authenticate_as(:'admin_a');
update public.webhooks set delivery_order = 'ordered' where id = :'big';
select tests.clear_authentication();
select results_eq(format($$select through from private.webhook_order_releases where webhook_id = %L$$, :'big'),
  $$values (now())$$, 'switched back to ordered: the release now covers what was created before that');
select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{"process_id": "k1", "n": 9}') as later_event \gset

select count(*) from private.claim_due_deliveries('worker-4', 10, 60) \gset
select results_eq(format($$select count(*)::integer from public.webhook_deliveries where webhook_id = %L and ordering_key is not null$$, :'big'),
  $$values (3)$$, 'a claim releases one more chunk (2 of the old ones left, and the new one)');
select count(*) from private.claim_due_deliveries('worker-4', 10, 60) \gset
select is((select count(*)::integer from private.webhook_order_releases where webhook_id = :'big'), 0,
  'the next releases the last ones and ends it');
select results_eq(format($$select (select ordering_key from public.webhook_deliveries where event_id = %L),
                                  count(*) filter (where attempt_count > 0)::integer
                             from public.webhook_deliveries where webhook_id = %L and event_id <> %L$$,
                         :'later_event', :'big', :'later_event'),
  $$values ('k1'::text, 8)$$,
  'the new delivery keeps its key; all 8 old ones went, in parallel, none held');
-- The old ones of k1 it was parked behind lost their key: none of them will release it.
select count(*) from private.claim_due_deliveries('worker-4', 10, 60) \gset
select results_eq(format($$select attempt_count, next_attempt_at < 'infinity' from public.webhook_deliveries where event_id = %L$$, :'later_event'),
  $$values (1, true)$$,
  'and the new one of k1 is not left parked behind them: it went too');

select * from finish();
rollback;

-- One delivery of a key in flight, even when a delivery with an earlier sequence number
-- commits after a later one was already sent. Sequence numbers are taken when a delivery
-- is created, not when its transaction commits: an ADMIN's redelivery (or an event
-- without a natural key) can take its number, and a business transaction can take the next
-- one, commit first and have its delivery claimed, before the first transaction commits.
-- The late delivery then waits for the one in flight (it is parked, and waiting_for names
-- it) and goes when that one has ended.
-- The late commit is simulated by inserting the row that transaction would have inserted
-- (its number taken before the other one's) once the other one is in flight.
-- And when the one in flight does not end (it fails and waits on a retry, or its lease runs
-- out), the late one goes first, and the key never stalls (migration 20261201090200).
begin;
select plan(15);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://ordered.example.com/hook') as ordered \gset
update public.webhooks set delivery_order = 'ordered' where id = :'ordered';

-- Revision 2 of p1 was delivered.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 2}') as r2_event \gset
select private.record_delivery_results('worker-1', jsonb_agg(jsonb_build_object(
         'delivery_id', c.delivery_id, 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days')
  from private.claim_due_deliveries('worker-1', 10, 60) c \gset
select id as r2 from public.webhook_deliveries where event_id = :'r2_event' \gset

-- An ADMIN starts redelivering it: their transaction takes its number now ...
select nextval('private.webhook_delivery_ordering_seq') as early_seq \gset
-- ... meanwhile revision 3 is committed and sent.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 3}') as r3_event \gset
select id as r3, ordering_seq as r3_seq from public.webhook_deliveries where event_id = :'r3_event' \gset
select is((select delivery_id from private.claim_due_deliveries('worker-1', 10, 60)), :'r3'::uuid, 'revision 3 is in flight');
-- Then the ADMIN's transaction commits its redelivery.
insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, redelivery_of, ordering_key, ordering_seq)
values (:'company_a', :'r2_event', :'ordered', now(), :'r2', 'p1', :early_seq)
returning id as late \gset
select cmp_ok(:early_seq::bigint, '<', :'r3_seq'::bigint, 'the late redelivery has the earlier number');

select is((select count(*)::integer from private.claim_due_deliveries('worker-2', 10, 60)), 0,
  'it is not sent while revision 3 of its key is in flight');
select is((select next_attempt_at from public.webhook_deliveries where id = :'late'), 'infinity'::timestamptz,
  'it is parked');
select is((select public.waiting_for(d) from public.webhook_deliveries d where d.id = :'late'), :'r3'::uuid,
  'and waiting_for names the delivery in flight');

select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
  'delivery_id', :'r3', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
select is((select delivery_id from private.claim_due_deliveries('worker-2', 10, 60)), :'late'::uuid,
  'once revision 3 has ended, the redelivery goes');
select is((select public.waiting_for(d) from public.webhook_deliveries d where d.id = :'late'), null,
  'in flight, it waits for nothing');

-- The one in flight fails and waits on a retry ------------------------------------------------
select private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
  'delivery_id', :'late', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
-- (Another key of the same endpoint, p2: revision 1's number taken first, revision 2 sent.)
select nextval('private.webhook_delivery_ordering_seq') as p2_early_seq \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p2", "revision": 2}') as p2_event \gset
select id as p2_sent from public.webhook_deliveries where event_id = :'p2_event' \gset
select is((select delivery_id from private.claim_due_deliveries('worker-1', 10, 3600)), :'p2_sent'::uuid, 'p2: revision 2 is in flight');
insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, ordering_key, ordering_seq)
values (:'company_a', :'p2_event', :'ordered', now(), 'p2', :p2_early_seq)
returning id as p2_late \gset
select is((select count(*)::integer from private.claim_due_deliveries('worker-2', 10, 3600)), 0,
  'p2: the late one is parked behind it');
select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
  'delivery_id', :'p2_sent', 'attempt_number', 1, 'outcome', 'failed', 'status', 503, 'duration_ms', 1,
  'next_attempt_at', now() + interval '5 minutes')), interval '5 days') \gset
select is((select delivery_id from private.claim_due_deliveries('worker-2', 10, 3600)), :'p2_late'::uuid,
  'p2: revision 2 failed and waits 5 minutes: the late one, numbered before it, goes now');
select tests.time_passes('5 minutes');
select is((select count(*)::integer from private.claim_due_deliveries('worker-1', 10, 3600)), 0,
  'p2: revision 2''s retry is due, but waits while the earlier one is in flight');
select private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
  'delivery_id', :'p2_late', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
select is((select delivery_id from private.claim_due_deliveries('worker-1', 10, 3600)), :'p2_sent'::uuid,
  'p2: once it has ended, revision 2 goes again');

-- The one in flight is never recorded: its dispatcher died, its lease runs out ----------------
select nextval('private.webhook_delivery_ordering_seq') as p3_early_seq \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p3", "revision": 2}') as p3_event \gset
select id as p3_sent from public.webhook_deliveries where event_id = :'p3_event' \gset
select is((select delivery_id from private.claim_due_deliveries('worker-1', 10, 60)), :'p3_sent'::uuid, 'p3: revision 2 is in flight');
insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, ordering_key, ordering_seq)
values (:'company_a', :'p3_event', :'ordered', now(), 'p3', :p3_early_seq)
returning id as p3_late \gset
select is((select count(*)::integer from private.claim_due_deliveries('worker-2', 10, 3600)), 0,
  'p3: the late one is parked behind it');
select tests.time_passes('61 seconds');
-- The claim that finds revision 2 due again parks it behind the late one and releases that;
-- the next one sends it.
select is((select array_agg(delivery_id)
             from (select delivery_id from private.claim_due_deliveries('worker-2', 10, 3600)
                   union all
                   select delivery_id from private.claim_due_deliveries('worker-2', 10, 3600)) c),
  array[:'p3_late'::uuid],
  'p3: the lease ran out: the late one goes first, revision 2 waits behind it');

select * from finish();
rollback;

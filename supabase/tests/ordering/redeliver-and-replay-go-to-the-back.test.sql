-- A redelivery or a replay to an ordered endpoint is a new delivery, created now: it keeps
-- its event's key, takes the next number, and so goes to the back of its key: it waits
-- behind the deliveries of the key already pending (one at a time is kept), and an old
-- event then arrives after newer ones of the same key (the promise is per creation, as
-- documented). Replayed events go in the order the events were created.
begin;
select plan(10);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/hook') as hook \gset
update public.webhooks set delivery_order = 'ordered' where id = :'hook';

-- Revision 2 of p1 failed for good; 3 is in flight, 4 parked behind it.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 2}') as r2_event \gset
select private.record_delivery_results('worker-1', jsonb_agg(jsonb_build_object(
         'delivery_id', c.delivery_id, 'attempt_number', 1, 'outcome', 'failed', 'status', 500, 'duration_ms', 1, 'next_attempt_at', null)), interval '5 days')
  from private.claim_due_deliveries('worker-1', 10, 60) c \gset
select id as r2 from public.webhook_deliveries where event_id = :'r2_event' \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 3}') as r3_event \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 4}') as r4_event \gset
select id as r3 from public.webhook_deliveries where event_id = :'r3_event' \gset
select id as r4 from public.webhook_deliveries where event_id = :'r4_event' \gset
select is((select delivery_id from private.claim_due_deliveries('worker-1', 10, 60)), :'r3'::uuid, 'revision 3 in flight');

-- Redeliver ---------------------------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select public.redeliver_webhook_delivery(:'r2') as again \gset
select tests.clear_authentication();
select results_eq(format($$select ordering_key, ordering_seq > (select ordering_seq from public.webhook_deliveries where id = %L)
                            from public.webhook_deliveries where id = %L$$, :'r4', :'again'),
  $$values ('p1'::text, true)$$,
  'the redelivery of revision 2 keeps key p1 and is numbered after revision 4');
select is((select count(*)::integer from private.claim_due_deliveries('worker-2', 10, 60)), 0,
  'it is not sent while revision 3 is in flight');
select is((select public.waiting_for(d) from public.webhook_deliveries d where d.id = :'again'), :'r3'::uuid,
  'it waits for revision 3, the earliest of its key still pending');
select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
  'delivery_id', :'r3', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
select is((select delivery_id from private.claim_due_deliveries('worker-2', 10, 60)), :'r4'::uuid,
  'revision 4 goes before the redelivery of revision 2');
select private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
  'delivery_id', :'r4', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
select is((select delivery_id from private.claim_due_deliveries('worker-2', 10, 60)), :'again'::uuid,
  'then the redelivery');
select private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
  'delivery_id', :'again', 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset

-- Replay ----------------------------------------------------------------------------------------
-- Revisions 5 and 6 of p2 were cancelled (the endpoint was disabled a while); revision 7 is pending.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p2", "revision": 5}') as r5_event \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p2", "revision": 6}') as r6_event \gset
update public.webhooks set is_active = false where id = :'hook';
update public.webhooks set is_active = true where id = :'hook';
select tests.time_passes('1 minute');
update public.webhook_events set created_at = created_at - interval '1 minute' where id in (:'r5_event', :'r6_event');
update public.webhook_events set created_at = created_at + interval '1 second' where id = :'r6_event';
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p2", "revision": 7}') as r7_event \gset
select tests.authenticate_as(:'admin_a');
select is(public.replay_webhook_deliveries(:'hook', now() - interval '1 hour'), 2, 'the ADMIN replays what was lost: revisions 5 and 6 of p2 (and nothing of p1: all delivered)');
select tests.clear_authentication();
select results_eq(
  format($$select (e.payload -> 'data' ->> 'revision')::integer, d.ordering_key from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id
            where d.webhook_id = %L and d.state = 'pending' order by d.ordering_seq$$, :'hook'),
  $$values (7, 'p2'::text), (5, 'p2'), (6, 'p2')$$,
  'the replayed deliveries keep key p2 and come after revision 7, in the order their events were created');
select results_eq($$select (payload -> 'data' ->> 'revision')::integer from private.claim_due_deliveries('worker-3', 10, 60)$$,
  $$values (7)$$, 'revision 7 goes first');
select results_eq(format($$select public.waiting_for(d) from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id
                            where d.webhook_id = %L and d.state = 'pending' and e.id in (%L, %L) order by d.ordering_seq$$, :'hook', :'r5_event', :'r6_event'),
  format($$select id from public.webhook_deliveries where event_id = %L and state = 'pending' union all select id from public.webhook_deliveries where event_id = %L and state = 'pending'$$, :'r7_event', :'r7_event'),
  'the replayed ones both wait for it');

select * from finish();
rollback;

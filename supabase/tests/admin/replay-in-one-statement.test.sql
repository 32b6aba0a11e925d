-- A replay creates all of its deliveries in one statement (migration 20261130110000): one
-- signal for the endpoint, not one per event, and the events in the order they were
-- created, whatever order they were written in. private.insert_deliveries, the one home of
-- the ordering rule, takes several events and refuses ids and keys that do not pair up.
begin;
select plan(7);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://ordered.example.com/hook') as ordered \gset
update public.webhooks set delivery_order = 'ordered' where id = :'ordered';
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://parallel.example.com/hook') as parallel \gset

-- Three revisions of p1, written in the order 1, 2, 3 but created 3, 2, 1 (oldest first),
-- all failed at both endpoints.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 1}') as e1 \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 2}') as e2 \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 3}') as e3 \gset
update public.webhook_events e set created_at = now() - interval '1 minute' * (e.payload -> 'data' ->> 'revision')::integer
 where id in (:'e1', :'e2', :'e3');
update public.webhook_deliveries set state = 'failed', next_attempt_at = null, completed_at = now(),
       ordering_key = null, ordering_seq = null
 where webhook_id in (:'ordered', :'parallel');
select count(*) as signals_before from private.webhook_endpoint_signals where webhook_id = :'ordered' \gset

select tests.authenticate_as(:'admin_a');
select is(public.replay_webhook_deliveries(:'ordered', now() - interval '1 hour'), 3, 'the ADMIN replays the three revisions');
select is(public.replay_webhook_deliveries(:'parallel', now() - interval '1 hour'), 3, 'and to the parallel endpoint');
select tests.clear_authentication();

select is((select count(*) from private.webhook_endpoint_signals where webhook_id = :'ordered') - :signals_before, 1::bigint,
  'one signal for the endpoint: the three deliveries came from one statement');
select results_eq(
  format($$select (e.payload -> 'data' ->> 'revision')::integer, d.ordering_key from public.webhook_deliveries d
             join public.webhook_events e on e.id = d.event_id
            where d.webhook_id = %L and d.state = 'pending' order by d.ordering_seq$$, :'ordered'),
  $$values (3, 'p1'::text), (2, 'p1'), (1, 'p1')$$,
  'the ordered endpoint''s deliveries keep key p1 and are numbered in the order their events were created');
select results_eq(
  format($$select count(*)::integer, count(ordering_key)::integer, count(ordering_seq)::integer
             from public.webhook_deliveries where webhook_id = %L and state = 'pending'$$, :'parallel'),
  $$values (3, 0, 0)$$,
  'the parallel endpoint''s get neither key nor number');

select throws_ok(
  format($$select private.insert_deliveries(%L, array[%L, %L]::uuid[], array['p1'], array[%L]::uuid[])$$, :'company_a', :'e1', :'e2', :'ordered'),
  '22023', 'event_ids and event_keys must be the same length, got 2 and 1',
  'ids and keys that do not pair up are refused');
select is((select count(*) from public.webhook_deliveries where webhook_id = :'ordered' and state = 'pending'), 3::bigint,
  'and nothing was created');

select * from finish();
rollback;

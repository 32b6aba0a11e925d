-- Ordered endpoints (webhooks.delivery_order = 'ordered'): at most one delivery of an
-- ordering key is in flight, and the next one of the key is not attempted until the one
-- before it has ended (succeeded, or failed after its last retry). A failing head holds
-- back only its own key, and the deliveries it holds back spend no attempts: a claim that
-- finds them due parks them (next_attempt_at 'infinity') and the end of the one before
-- releases the next. Events without a natural key are ordered per endpoint (key '').
-- Parallel endpoints of the same events are not held at all. A dispatcher that dies with
-- a head in flight loses nothing and breaks no order: the head is retried when its lease
-- runs out, the others stay parked.
begin;
select plan(22);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://ordered.example.com/hook') as ordered \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://parallel.example.com/hook') as parallel \gset
update public.webhooks set delivery_order = 'ordered' where id = :'ordered';

-- Revisions 2, 3, 4 of p1, revision 2 of p2, and two events without a process.
create temp table events (name text, id uuid);
insert into events
select e.name, private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', e.data)
  from (values ('p1r2', '{"process_id": "p1", "revision": 2}'::jsonb), ('p1r3', '{"process_id": "p1", "revision": 3}'),
               ('p1r4', '{"process_id": "p1", "revision": 4}'), ('p2r2', '{"process_id": "p2", "revision": 2}'),
               ('k1', '{"note": "no process"}'), ('k2', '{"note": "no process either"}')) e(name, data)
 order by e.name;  -- (any order of statements: each event is its own statement)
-- The ordered endpoint's delivery of each event, by event name.
create function pg_temp.d(name text) returns uuid language sql as $$
  select d.id from public.webhook_deliveries d join events e on e.id = d.event_id
   where e.name = d.name and d.webhook_id = (select id from public.webhooks where url = 'https://ordered.example.com/hook')
$$;
create function pg_temp.claim(worker text) returns table (name text, webhook_id uuid, attempt integer) language sql as $$
  select e.name, c.webhook_id, c.attempt_number
    from private.claim_due_deliveries(worker, 50, 60) c join events e on e.id = c.event_id
   order by 1
$$;
create temp table claims as select 'c1' as call, * from pg_temp.claim('worker-1');

select set_eq($$select name from claims where call = 'c1' and webhook_id = (select id from public.webhooks where url = 'https://parallel.example.com/hook')$$,
  $$values ('p1r2'), ('p1r3'), ('p1r4'), ('p2r2'), ('k1'), ('k2')$$,
  'the parallel endpoint gets every event at once');
select set_eq($$select name from claims where call = 'c1' and webhook_id = (select id from public.webhooks where url = 'https://ordered.example.com/hook')$$,
  $$values ('p1r2'), ('p2r2'), ('k1')$$,
  'the ordered endpoint gets the first of each key: p1''s revision 2, p2''s, and the first event without a process');
select results_eq($$select attempt_count, next_attempt_at from public.webhook_deliveries where id in (pg_temp.d('p1r3'), pg_temp.d('p1r4'), pg_temp.d('k2'))$$,
  $$values (0, 'infinity'::timestamptz), (0, 'infinity'::timestamptz), (0, 'infinity'::timestamptz)$$,
  'the others are parked (infinity), not attempted');
select is((select count(*)::integer from pg_temp.claim('worker-2')), 0, 'nothing more while each key has one in flight');
-- The parallel endpoint is done with (so later claims show the ordered endpoint alone).
select private.record_delivery_results('worker-1', jsonb_agg(jsonb_build_object(
  'delivery_id', c.delivery_id, 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days')
  from (select d.id as delivery_id from public.webhook_deliveries d where d.webhook_id = :'parallel') c \gset

-- A success releases the next of its key, and only that one.
select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
  'delivery_id', pg_temp.d('p1r2'), 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
select results_eq($$select next_attempt_at from public.webhook_deliveries where id in (pg_temp.d('p1r3'), pg_temp.d('p1r4')) order by ordering_seq$$,
  $$values (now()), ('infinity'::timestamptz)$$,
  'p1''s revision 2 succeeded: revision 3 is due now, revision 4 still parked');
insert into claims select 'c2', * from pg_temp.claim('worker-2');
select results_eq($$select name, attempt from claims where call = 'c2'$$, $$values ('p1r3'::text, 1)$$,
  'the next claim sends revision 3');

-- A failing head holds back only its key.
select private.record_delivery_results('worker-2', jsonb_build_array(jsonb_build_object(
  'delivery_id', pg_temp.d('p1r3'), 'attempt_number', 1, 'outcome', 'failed', 'status', 500, 'duration_ms', 1,
  'next_attempt_at', now() + interval '1 minute')), interval '5 days') \gset
select is((select next_attempt_at from public.webhook_deliveries where id = pg_temp.d('p1r4')), 'infinity'::timestamptz,
  'revision 3 failed and waits for its retry: revision 4 stays parked');
select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
  'delivery_id', pg_temp.d('k1'), 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
insert into claims select 'c3', * from pg_temp.claim('worker-3');
select results_eq($$select name from claims where call = 'c3'$$, $$values ('k2'::text)$$,
  'meanwhile the other keys go on: the second event without a process follows the first');

select tests.time_passes('1 minute');
insert into claims select 'c4', * from pg_temp.claim('worker-3');
select results_eq($$select name, attempt from claims where call = 'c4'$$, $$values ('k2'::text, 2), ('p1r3', 2), ('p2r2', 2)$$,
  'a minute later revision 3 is retried (attempt 2); the heads whose lease ran out are attempted again');
select results_eq($$select attempt_count, next_attempt_at from public.webhook_deliveries where id = pg_temp.d('p1r4')$$,
  $$values (0, 'infinity'::timestamptz)$$,
  'revision 4 has still spent no attempt');
select is((select count(*)::integer from pg_temp.claim('worker-4')), 0, 'and is not sent while revision 3 is in flight');

-- Failed after its last retry: the key moves on.
select private.record_delivery_results('worker-3', jsonb_build_array(jsonb_build_object(
  'delivery_id', pg_temp.d('p1r3'), 'attempt_number', 2, 'outcome', 'failed', 'status', 500, 'duration_ms', 1,
  'next_attempt_at', null)), interval '5 days') \gset
select results_eq($$select state::text, next_attempt_at from public.webhook_deliveries where id in (pg_temp.d('p1r3'), pg_temp.d('p1r4')) order by ordering_seq$$,
  $$values ('failed'::text, null::timestamptz), ('pending', now())$$,
  'revision 3 failed for good: revision 4 is due now');
insert into claims select 'c5', * from pg_temp.claim('worker-4');
select results_eq($$select name, attempt from claims where call = 'c5'$$, $$values ('p1r4'::text, 1)$$,
  'and sent, as its first attempt');

-- A dispatcher dies with a head in flight.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"process_id": "p1", "revision": 5}') as p1r5_event \gset
insert into events values ('p1r5', :'p1r5_event');
select is((select count(*)::integer from pg_temp.claim('worker-5') where webhook_id = :'ordered'), 0,
  'revision 5 waits behind revision 4, in flight');
select tests.time_passes('61 seconds');  -- worker-4 died: its lease runs out
insert into claims select 'c6', * from pg_temp.claim('worker-5');
select results_eq($$select name, attempt from claims where call = 'c6' and webhook_id = (select id from public.webhooks where url = 'https://ordered.example.com/hook') order by name$$,
  $$values ('k2'::text, 3), ('p1r4', 2), ('p2r2', 3)$$,
  'when the lease runs out the head is attempted again (p1''s revision 4, attempt 2), never the one behind it');
select results_eq($$select attempt_count, next_attempt_at from public.webhook_deliveries where id = pg_temp.d('p1r5')$$,
  $$values (0, 'infinity'::timestamptz)$$,
  'revision 5 is parked, unattempted');

-- Each key's deliveries were sent in order: every claim of a delivery came after the end of the one before it.
select private.record_delivery_results('worker-5', jsonb_agg(jsonb_build_object(
  'delivery_id', d.id, 'attempt_number', d.attempt_count, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days')
  from public.webhook_deliveries d where d.webhook_id = :'ordered' and d.state = 'pending' and d.lease_owner = 'worker-5' \gset
insert into claims select 'c7', * from pg_temp.claim('worker-6');
select results_eq($$select name, attempt from claims where call = 'c7'$$, $$values ('p1r5'::text, 1)$$,
  'revision 5 goes once revision 4 succeeded');
select results_eq(
  format($$select c.name from claims c where c.webhook_id = %L and c.name like 'p1%%' group by c.name order by min(c.call), c.name$$, :'ordered'),
  $$values ('p1r2'::text), ('p1r3'), ('p1r4'), ('p1r5')$$,
  'p1''s revisions were first sent in revision order');
select is(
  (select count(*)::integer from public.webhook_deliveries where webhook_id = :'ordered' and ordering_key = 'p1'
      and ordering_seq is not null),
  4, 'each delivery to the ordered endpoint carries its key and a sequence number');
select results_eq(
  format($$select ordering_key from public.webhook_deliveries where webhook_id = %L and event_id in (select id from events where name in ('k1', 'k2'))$$, :'ordered'),
  $$values (''::text), ('')$$,
  'events without a process share the endpoint''s key ''''');
select is((select count(*)::integer from public.webhook_deliveries where webhook_id = :'parallel' and (ordering_key is not null or ordering_seq is not null)), 0,
  'deliveries to the parallel endpoint have no key');
select is((select count(*)::integer from public.webhook_deliveries where webhook_id = :'parallel' and next_attempt_at = 'infinity'), 0,
  'and are never parked');

select * from finish();
rollback;

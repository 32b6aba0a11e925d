-- webhooks.delivery_order ('parallel' by default, or 'ordered'; a named check) is the
-- ADMIN's to set, and every statement that creates deliveries gives each delivery to an
-- ordered endpoint its ordering key and a sequence number (private.insert_deliveries):
-- the key is the event's ordering_key, the process id for process events, or '' (one order
-- per endpoint) for events without one; numbers follow creation order, also within one
-- transaction. Deliveries to parallel endpoints get neither.
begin;
select plan(17);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/ordered') as ordered \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/parallel') as parallel \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a.example.com/created') as created_hook \gset

-- The setting ---------------------------------------------------------------------------------
select is((select delivery_order from public.webhooks where id = :'ordered'), 'parallel', 'a new webhook delivers in parallel');
select tests.authenticate_as(:'admin_a');
select throws_ok(format($$update public.webhooks set delivery_order = 'fifo' where id = %L$$, :'ordered'),
  '23514', 'new row for relation "webhooks" violates check constraint "webhooks_delivery_order_valid"',
  'another value is refused, naming the rule');
select lives_ok(format($$update public.webhooks set delivery_order = 'ordered' where id in (%L, %L)$$, :'ordered', :'created_hook'),
  'an ADMIN sets delivery_order on their webhooks');
select lives_ok(format($$insert into public.webhooks (company_id, trigger_type, url, delivery_order) values (%L, 'PROCESS_DELETED', 'https://a.example.com/deleted', 'ordered')$$, :'company_a'),
  'and can create a webhook ordered from the start');
select tests.clear_authentication();
select tests.authenticate_as(:'admin_b');
update public.webhooks set delivery_order = 'parallel' where id = :'ordered';
select tests.clear_authentication();
select is((select delivery_order from public.webhooks where id = :'ordered'), 'ordered', 'another company''s ADMIN cannot change it');
select tests.authenticate_as(:'member_a');
update public.webhooks set delivery_order = 'parallel' where id = :'ordered';
select tests.clear_authentication();
select is((select delivery_order from public.webhooks where id = :'ordered'), 'ordered', 'nor can a MEMBER');

-- Process events ----------------------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
insert into public.processes (company_id, name) values (:'company_a', 'One'), (:'company_a', 'Two');
select id as p1 from public.processes where name = 'One' \gset
select id as p2 from public.processes where name = 'Two' \gset
-- Three revisions of p1 and one of p2 in one transaction, in this order.
update public.processes set name = 'One, rev 2' where id = :'p1';
update public.processes set name = 'Two, rev 2' where id = :'p2';
update public.processes set name = 'One, rev 3' where id = :'p1';
update public.processes set name = 'One, rev 4' where id = :'p1';
select tests.clear_authentication();

select is((select count(*)::integer from public.webhook_events where trigger_type in ('PROCESS_CREATED', 'PROCESS_REVISED') and ordering_key is distinct from payload -> 'data' ->> 'process_id'), 0,
  'a process event''s ordering key is its process id');
select results_eq(
  format($$select d.ordering_key, (e.payload -> 'data' ->> 'revision')::integer from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id
            where d.webhook_id = %L order by d.ordering_seq$$, :'ordered'),
  format($$values (%L::text, 2), (%L, 2), (%L, 3), (%L, 4)$$, :'p1', :'p2', :'p1', :'p1'),
  'the ordered endpoint''s deliveries carry the process as key, numbered in the order they were created');
select is((select count(*)::integer from public.webhook_deliveries where webhook_id = :'parallel' and (ordering_key is not null or ordering_seq is not null)), 0,
  'the parallel endpoint''s deliveries of the same events have no key and no number');
select results_eq(
  format($$select ordering_key from public.webhook_deliveries where webhook_id = %L order by ordering_seq$$, :'created_hook'),
  format($$values (%L::text), (%L)$$, :'p1', :'p2'),
  'one statement creating two processes: each event keyed by its own process, in creation order');
select tests.authenticate_as(:'admin_a');
delete from public.processes where id = :'p2';
select tests.clear_authentication();
select is((select e.ordering_key from public.webhook_events e where e.trigger_type = 'PROCESS_DELETED'), :'p2',
  'PROCESS_DELETED is keyed by the process too');
select is((select d.ordering_key from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id where e.trigger_type = 'PROCESS_DELETED'), :'p2',
  'and its delivery to the ordered PROCESS_DELETED endpoint carries it');

-- Events without a process -------------------------------------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"note": "no process"}') as keyless_event \gset
select is((select ordering_key from public.webhook_events where id = :'keyless_event'), null, 'an event without a process has no ordering key');
select results_eq(format($$select webhook_id, ordering_key from public.webhook_deliveries where event_id = %L order by ordering_key nulls last$$, :'keyless_event'),
  format($$values (%L::uuid, ''::text), (%L::uuid, null)$$, :'ordered', :'parallel'),
  'its delivery to the ordered endpoint has the endpoint''s own key ''''; the parallel one none');
select tests.authenticate_as(:'admin_a');
select public.send_test_webhook(:'ordered') as test_delivery \gset
select tests.clear_authentication();
select is((select ordering_key from public.webhook_deliveries where id = :'test_delivery'), '', 'a test event to an ordered endpoint is keyed '''' too');

-- Every statement that creates deliveries numbers them after all before.
select tests.authenticate_as(:'admin_a');
select public.redeliver_webhook_delivery((select id from public.webhook_deliveries where webhook_id = :'ordered' order by ordering_seq limit 1)) as redelivery \gset
select tests.clear_authentication();
select results_eq(format($$select ordering_key, ordering_seq > (select max(ordering_seq) from public.webhook_deliveries where webhook_id = %L and id <> %L)
                            from public.webhook_deliveries where id = %L$$, :'ordered', :'redelivery', :'redelivery'),
  format($$values (%L::text, true)$$, :'p1'),
  'a redelivery keeps its event''s key and takes the next number');
select is(
  (select count(distinct ordering_seq)::integer from public.webhook_deliveries where webhook_id = :'ordered'),
  (select count(*)::integer from public.webhook_deliveries where webhook_id = :'ordered'),
  'no two deliveries of the endpoint share a number');

select * from finish();
rollback;

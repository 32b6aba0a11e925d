-- Fan-out: an event reaches exactly the active endpoints of its own company that are
-- subscribed to its trigger type, one delivery each, all pointing at the one event row.
begin;
select plan(16);

select tests.create_company('Acme') as company_a \gset
select tests.create_company('Globex') as company_b \gset

-- Acme: three active PROCESS_REVISED endpoints, one inactive, one PROCESS_CREATED.
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a1.example.com/hook') as a_revised_1 \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a2.example.com/hook') as a_revised_2 \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a3.example.com/hook') as a_revised_3 \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a-off.example.com/hook', false) as a_revised_off \gset
-- Same URL as a_revised_1, other trigger type: a separate subscription.
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a1.example.com/hook') as a_created \gset
-- Globex: two PROCESS_REVISED endpoints.
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://b1.example.com/hook') as b_revised_1 \gset
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://b2.example.com/hook') as b_revised_2 \gset

-- An Acme revision.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 1}') as a_event \gset

select set_eq(
  format('select webhook_id from public.webhook_deliveries where event_id = %L', :'a_event'),
  format('values (%L::uuid), (%L::uuid), (%L::uuid)', :'a_revised_1', :'a_revised_2', :'a_revised_3'),
  'an Acme PROCESS_REVISED event reaches the three active Acme PROCESS_REVISED endpoints');
select is(
  (select count(*)::integer from public.webhook_deliveries where event_id = :'a_event'), 3,
  'exactly one delivery per endpoint');
select is(
  (select count(distinct id)::integer from public.webhook_deliveries where event_id = :'a_event'), 3,
  'each delivery has its own id (its own webhook-id header)');
select is(
  (select count(*)::integer from public.webhook_deliveries where event_id = :'a_event' and company_id = :'company_a'), 3,
  'every delivery belongs to the event''s company');
select is(
  (select count(*)::integer from public.webhook_deliveries
    where webhook_id in (:'b_revised_1', :'b_revised_2')), 0,
  'Globex endpoints get nothing from Acme events');
select is(
  (select count(*)::integer from public.webhook_deliveries where webhook_id = :'a_created'), 0,
  'an endpoint subscribed to another trigger type gets nothing, even at the same URL');
select is(
  (select count(*)::integer from public.webhook_deliveries where webhook_id = :'a_revised_off'), 0,
  'an inactive endpoint gets nothing');

-- A Globex revision.
select private.enqueue_webhook_event(:'company_b', 'PROCESS_REVISED', '{"n": 2}') as b_event \gset
select set_eq(
  format('select webhook_id from public.webhook_deliveries where event_id = %L', :'b_event'),
  format('values (%L::uuid), (%L::uuid)', :'b_revised_1', :'b_revised_2'),
  'a Globex event reaches only the Globex endpoints');
select is(
  (select company_id from public.webhook_events where id = :'b_event'), :'company_b'::uuid,
  'and the event is Globex''s');

-- An Acme creation.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{"n": 3}') as a_created_event \gset
select set_eq(
  format('select webhook_id from public.webhook_deliveries where event_id = %L', :'a_created_event'),
  format('values (%L::uuid)', :'a_created'),
  'a PROCESS_CREATED event reaches only the PROCESS_CREATED endpoint');

-- Deactivating and reactivating an endpoint changes what later events reach.
update public.webhooks set is_active = false where id = :'a_revised_2';
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 4}') as a_event_2 \gset
select set_eq(
  format('select webhook_id from public.webhook_deliveries where event_id = %L', :'a_event_2'),
  format('values (%L::uuid), (%L::uuid)', :'a_revised_1', :'a_revised_3'),
  'an endpoint deactivated before the event gets nothing');

update public.webhooks set is_active = true where id = :'a_revised_2';
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 5}') as a_event_3 \gset
select is(
  (select count(*)::integer from public.webhook_deliveries where event_id = :'a_event_3'), 3,
  'once reactivated it receives events again');

-- Totals over everything above.
select is((select count(*)::integer from public.webhook_events), 5, 'five events in all');
select results_eq(
  $$select w.url, count(d.id)::integer
      from public.webhooks w
      left join public.webhook_deliveries d on d.webhook_id = w.id
     group by w.id, w.url, w.trigger_type
     order by w.url, w.trigger_type$$,
  $$values ('https://a-off.example.com/hook'::text, 0),
           ('https://a1.example.com/hook', 1),
           ('https://a1.example.com/hook', 3),
           ('https://a2.example.com/hook', 2),
           ('https://a3.example.com/hook', 3),
           ('https://b1.example.com/hook', 1),
           ('https://b2.example.com/hook', 1)$$,
  'deliveries per endpoint add up');

-- Many endpoints: one delivery each.
select count(tests.create_webhook(:'company_b', 'PROCESS_DELETED', format('https://many-%s.example.com/hook', i)))
    as many_hooks
  from generate_series(1, 25) i \gset
select private.enqueue_webhook_event(:'company_b', 'PROCESS_DELETED', '{}') as b_deleted_event \gset
select is(
  (select count(*)::integer from public.webhook_deliveries where event_id = :'b_deleted_event'), 25,
  '25 subscribed endpoints get 25 deliveries');
select is(
  (select count(distinct webhook_id)::integer from public.webhook_deliveries where event_id = :'b_deleted_event'), 25,
  'one per endpoint');

select * from finish();
rollback;

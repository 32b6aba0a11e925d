-- Secrets never come back from a plain select, and the outbox tables (events, deliveries,
-- attempts) are read-only to the active ADMINs of their company and invisible to everyone
-- else; only the machinery writes them.
begin;
select plan(42);

-- The cast (tests.create_cast, helpers/setup.sql); the descriptions call its company A
-- "Acme" and its company B "Globex".
select * from tests.create_cast() \gset

select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a1.example.com/hook') as hook_a1 \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a2.example.com/hook') as hook_a2 \gset
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://b1.example.com/hook') as hook_b1 \gset

-- History for both companies: events, deliveries and one attempt per delivery.
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n))) as a_events
  from generate_series(1, 2) n \gset
select private.enqueue_webhook_event(:'company_b', 'PROCESS_REVISED', '{"n": 1}') as b_event \gset
select private.record_delivery_results('worker-1', jsonb_agg(jsonb_build_object(
         'delivery_id', c.delivery_id, 'attempt_number', c.attempt_number, 'outcome', 'succeeded',
         'status', 200, 'duration_ms', 10)), interval '5 days')
  as recorded
  from private.claim_due_deliveries('worker-1', 50, 60) c \gset

select array_agg(id) as a_event_ids from public.webhook_events where company_id = :'company_a' \gset
select array_agg(id) as a_delivery_ids from public.webhook_deliveries where company_id = :'company_a' \gset
select array_agg(id) as a_attempt_ids from public.webhook_delivery_attempts where company_id = :'company_a' \gset
select array_agg(id) as b_event_ids from public.webhook_events where company_id = :'company_b' \gset
select array_agg(id) as b_delivery_ids from public.webhook_deliveries where company_id = :'company_b' \gset
select array_agg(id) as b_attempt_ids from public.webhook_delivery_attempts where company_id = :'company_b' \gset

select is(
  (select array[cardinality(:'a_event_ids'::uuid[]), cardinality(:'a_delivery_ids'::uuid[]), cardinality(:'a_attempt_ids'::bigint[]),
                cardinality(:'b_event_ids'::uuid[]), cardinality(:'b_delivery_ids'::uuid[]), cardinality(:'b_attempt_ids'::bigint[])]),
  array[2, 4, 4, 1, 1, 1],
  'setup: Acme has 2 events, 4 deliveries, 4 attempts; Globex 1 of each');

-- Secrets ----------------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select throws_ok('select * from private.webhook_secrets',
  '42501', 'permission denied for table webhook_secrets', 'not even an ADMIN can select the secrets table');
select is(
  (select count(*)::integer from public.webhooks w where to_jsonb(w)::text like '%whsec\_%'), 0,
  'the ADMIN''s own webhooks carry no secret');
select tests.clear_authentication();

select tests.authenticate_as(:'member_a');
select throws_ok('select * from private.webhook_secrets',
  '42501', 'permission denied for table webhook_secrets', 'a MEMBER cannot select the secrets table');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok('select * from private.webhook_secrets',
  '42501', 'permission denied for schema private', 'anon cannot even reach the private schema');
select tests.clear_authentication();

select is(
  (select count(*)::integer from private.webhook_secrets where webhook_id in (:'hook_a1', :'hook_a2', :'hook_b1')), 3,
  'every webhook does have a secret, in private.webhook_secrets');
select is(
  (select array_agg(table_name::text || '.' || column_name::text) from information_schema.columns
    where table_schema = 'public' and column_name ilike '%secret%'),
  null,
  'no table in public has a secret column');
select is(
  (select array_agg(t.table_name::text)
     from information_schema.tables t
    where t.table_schema = 'public' and t.table_type = 'BASE TABLE'
      and query_to_xml(format('select * from public.%I', t.table_name), true, false, '')::text like '%whsec\_%'),
  null,
  'no row of any public table contains a whsec_ value');

-- Who sees the history -------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select set_eq('select id from public.webhook_events', format('select unnest(%L::uuid[])', :'a_event_ids'),
  'the ADMIN of Acme sees exactly Acme''s events');
select set_eq('select id from public.webhook_deliveries', format('select unnest(%L::uuid[])', :'a_delivery_ids'),
  'the ADMIN of Acme sees exactly Acme''s deliveries');
select set_eq('select id from public.webhook_delivery_attempts', format('select unnest(%L::bigint[])', :'a_attempt_ids'),
  'the ADMIN of Acme sees exactly Acme''s attempts');
select tests.clear_authentication();

select tests.authenticate_as(:'admin_b');
select set_eq('select id from public.webhook_events', format('select unnest(%L::uuid[])', :'b_event_ids'),
  'the ADMIN of Globex sees only Globex''s events');
select set_eq('select id from public.webhook_deliveries', format('select unnest(%L::uuid[])', :'b_delivery_ids'),
  'the ADMIN of Globex sees only Globex''s deliveries');
select set_eq('select id from public.webhook_delivery_attempts', format('select unnest(%L::bigint[])', :'b_attempt_ids'),
  'the ADMIN of Globex sees only Globex''s attempts');
select tests.clear_authentication();

select tests.authenticate_as(:'member_a');
select is_empty('select id from public.webhook_events', 'a MEMBER sees no events');
select is_empty('select id from public.webhook_deliveries', 'a MEMBER sees no deliveries');
select is_empty('select id from public.webhook_delivery_attempts', 'a MEMBER sees no attempts');
select tests.clear_authentication();

select tests.authenticate_as(:'inactive_admin_a');
select is_empty('select id from public.webhook_events', 'an inactive ADMIN sees no events');
select is_empty('select id from public.webhook_deliveries', 'an inactive ADMIN sees no deliveries');
select is_empty('select id from public.webhook_delivery_attempts', 'an inactive ADMIN sees no attempts');
select tests.clear_authentication();

select tests.authenticate_as(:'no_profile');
select is_empty('select id from public.webhook_events', 'a user without a profile sees no events');
select is_empty('select id from public.webhook_deliveries', 'a user without a profile sees no deliveries');
select is_empty('select id from public.webhook_delivery_attempts', 'a user without a profile sees no attempts');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok('select id from public.webhook_events',
  '42501', 'permission denied for table webhook_events', 'anon cannot read events at all');
select throws_ok('select id from public.webhook_deliveries',
  '42501', 'permission denied for table webhook_deliveries', 'anon cannot read deliveries at all');
select throws_ok('select id from public.webhook_delivery_attempts',
  '42501', 'permission denied for table webhook_delivery_attempts', 'anon cannot read attempts at all');
select tests.clear_authentication();

-- Once the company is deactivated, its ADMIN sees nothing either.
update public.companies set is_active = false where id = :'company_b';
select tests.authenticate_as(:'admin_b');
select is_empty('select id from public.webhook_deliveries', 'the ADMIN of a deactivated company sees no deliveries');
select tests.clear_authentication();
update public.companies set is_active = true where id = :'company_b';

-- Nobody but the machinery writes the history ---------------------------------------------
select tests.authenticate_as(:'admin_a');
select throws_ok(
  format($$insert into public.webhook_events (company_id, trigger_type, payload) values (%L, 'PROCESS_REVISED', '{}')$$, :'company_a'),
  '42501', 'permission denied for table webhook_events', 'an ADMIN cannot forge an event');
select throws_ok(
  format($$insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at) values (%L, %L, %L, now())$$,
         :'company_a', (:'a_event_ids'::uuid[])[1], :'hook_a1'),
  '42501', 'permission denied for table webhook_deliveries', 'an ADMIN cannot insert a delivery');
select throws_ok(
  format($$insert into public.webhook_delivery_attempts (delivery_id, company_id, attempt_number, outcome) values (%L, %L, 9, 'succeeded')$$,
         (:'a_delivery_ids'::uuid[])[1], :'company_a'),
  '42501', 'permission denied for table webhook_delivery_attempts', 'an ADMIN cannot insert an attempt');
select throws_ok($$update public.webhook_deliveries set state = 'cancelled', next_attempt_at = null$$,
  '42501', 'permission denied for table webhook_deliveries', 'an ADMIN cannot change a delivery');
select throws_ok($$update public.webhook_events set payload = '{}'$$,
  '42501', 'permission denied for table webhook_events', 'an ADMIN cannot change an event');
select throws_ok($$update public.webhook_delivery_attempts set status = 200$$,
  '42501', 'permission denied for table webhook_delivery_attempts', 'an ADMIN cannot change an attempt');
select throws_ok('delete from public.webhook_events',
  '42501', 'permission denied for table webhook_events', 'an ADMIN cannot delete events');
select throws_ok('delete from public.webhook_deliveries',
  '42501', 'permission denied for table webhook_deliveries', 'an ADMIN cannot delete deliveries');
select throws_ok('delete from public.webhook_delivery_attempts',
  '42501', 'permission denied for table webhook_delivery_attempts', 'an ADMIN cannot delete attempts');
select throws_ok($$update public.webhooks set disabled_at = null, disabled_reason = null$$,
  '42501', 'permission denied for table webhooks', 'an ADMIN cannot rewrite the disable bookkeeping');
select throws_ok($$update private.webhook_endpoints set failing_since = null, consecutive_failures = 0, circuit_opened_at = null$$,
  '42501', 'permission denied for table webhook_endpoints', 'nor the endpoint health the dispatcher keeps');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok(
  format($$insert into public.webhook_events (company_id, trigger_type, payload) values (%L, 'PROCESS_REVISED', '{}')$$, :'company_a'),
  '42501', 'permission denied for table webhook_events', 'anon cannot forge an event');
select tests.clear_authentication();

select tests.authenticate_as(:'no_profile');
select throws_ok('delete from public.webhook_deliveries',
  '42501', 'permission denied for table webhook_deliveries', 'a user without a profile cannot delete deliveries');
select tests.clear_authentication();

select results_eq(
  $$select (select count(*)::integer from public.webhook_events),
           (select count(*)::integer from public.webhook_deliveries where state = 'succeeded'),
           (select count(*)::integer from public.webhook_delivery_attempts)$$,
  $$values (3, 5, 5)$$,
  'the history is unchanged');

select tests.authenticate_as_service_role();
select is((select count(*)::integer from public.webhook_deliveries), 5, 'the service role sees every company''s deliveries');
select tests.clear_authentication();

select * from finish();
rollback;

-- The outbox API, private.enqueue_webhook_event: it writes an event and its deliveries in
-- the caller's transaction, so they exist exactly when that transaction commits; nobody
-- subscribed means no event at all; and it refuses, changing nothing, what is not an
-- event: an unknown trigger type (even when nobody subscribes), a body over 256 KB, no
-- company. Only the machinery (service role) may call it.
-- The test itself is one transaction: "rolled back" is shown with a savepoint and with
-- a subtransaction that fails after enqueueing; "committed" is what a statement leaves
-- behind once it has returned.
begin;
select plan(27);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://one.example.com/hook') as hook_one \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://two.example.com/hook') as hook_two \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://off.example.com/hook', false) as hook_off \gset

-- Rolled back with a savepoint: the rows exist inside it, and nothing is left after it.
-- (No pgTAP assertion inside the savepoint: its bookkeeping would be rolled back too.)
savepoint before_enqueue;
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"step": "rolled back"}') as rolled_back_event \gset
select count(*) as deliveries_inside_savepoint from public.webhook_deliveries where event_id = :'rolled_back_event' \gset
rollback to savepoint before_enqueue;

select is(:deliveries_inside_savepoint::integer, 2,
  'inside the transaction the event has one delivery per active subscribed endpoint');
select is((select count(*)::integer from public.webhook_events), 0,
  'after a rollback to savepoint no event is left');
select is((select count(*)::integer from public.webhook_deliveries), 0,
  'after a rollback to savepoint no delivery is left');

-- Rolled back by an error later in the same subtransaction.
select throws_ok(
  format($$select case when private.enqueue_webhook_event(%L, 'PROCESS_REVISED', '{}') is not null
                       then 1 / 0 end$$, :'company_a'),
  '22012', 'division by zero',
  'an error after the enqueue aborts the subtransaction');
select is((select count(*)::integer from public.webhook_events), 0,
  'the failed subtransaction left no event');
select is((select count(*)::integer from public.webhook_deliveries), 0,
  'the failed subtransaction left no delivery');

-- Committed: the event and one delivery per active subscribed endpoint.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"step": "kept"}') as kept_event \gset

select isnt(:'kept_event'::uuid, null, 'enqueue returns the event id');
select results_eq(
  format($$select company_id, trigger_type, payload -> 'data' from public.webhook_events where id = %L$$, :'kept_event'),
  format($$values (%L::uuid, 'PROCESS_REVISED'::text, '{"step": "kept"}'::jsonb)$$, :'company_a'),
  'the event row holds the company, the trigger type and the data');
select set_eq(
  format('select webhook_id from public.webhook_deliveries where event_id = %L', :'kept_event'),
  format('values (%L::uuid), (%L::uuid)', :'hook_one', :'hook_two'),
  'one delivery per active subscribed endpoint, none to the inactive one');
select is(
  (select count(*)::integer from public.webhook_deliveries
    where event_id = :'kept_event'
      and company_id = :'company_a'
      and state = 'pending'
      and attempt_count = 0
      and next_attempt_at = now()
      and lease_owner is null
      and lease_expires_at is null
      and completed_at is null),
  2,
  'each new delivery is pending, due now, never attempted and not leased');
select is((select count(*)::integer from public.webhook_events), 1, 'exactly one event exists');

-- Nobody subscribed: no event at all.
select is(private.enqueue_webhook_event(:'company_a', 'PROCESS_DELETED', '{}'), null,
  'enqueue returns null when no endpoint is subscribed');
select is((select count(*)::integer from public.webhook_events where trigger_type = 'PROCESS_DELETED'), 0,
  'and records no event');
select is(private.enqueue_webhook_event(tests.create_company('Nobody'), 'PROCESS_REVISED', '{}'), null,
  'a company without webhooks gets no event either');

-- Unknown trigger type: a foreign-key style error that names the type.
select throws_ok(
  format($$select private.enqueue_webhook_event(%L, 'PROCESS_EXPLODED', '{}')$$, :'company_a'),
  '23503', 'unknown webhook trigger type "PROCESS_EXPLODED"',
  'an unknown trigger type is refused with 23503');

-- Payload limit: 256 KB of JSON body, counted on the exact body that is sent.
-- Body size for a blob of n ASCII characters = overhead + n (the timestamp is always 27 chars).
select octet_length(jsonb_build_object(
         'type', 'PROCESS_REVISED',
         'timestamp', '2026-01-01T00:00:00.000000Z',
         'company_id', :'company_a'::uuid,
         'data', jsonb_build_object('blob', ''))::text) as body_overhead \gset

select isnt(
  private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED',
    jsonb_build_object('blob', repeat('x', 262144 - :body_overhead))),
  null,
  'a body of exactly 262144 bytes is accepted');
select is(
  (select octet_length(payload::text) from public.webhook_events
    where payload -> 'data' ? 'blob' order by octet_length(payload::text) desc limit 1),
  262144,
  'and the stored body is exactly 262144 bytes');
select throws_ok(
  format($$select private.enqueue_webhook_event(%L, 'PROCESS_REVISED', jsonb_build_object('blob', repeat('x', %s)))$$,
         :'company_a', 262144 - :body_overhead + 1),
  '54000', 'webhook payload is 262145 bytes; the limit is 262144 bytes (256 KB)',
  'one byte more is refused with 54000 and a message giving the size and the limit');
-- Numbers count as their text: 1e131071 is a few bytes of jsonb and 131,072 digits sent.
select throws_ok(
  format($$select private.enqueue_webhook_event(%L, 'PROCESS_REVISED', '{"a": 1e131071, "b": 1e131071}')$$, :'company_a'),
  '54000', null,
  'a body whose large numbers print as more than 256 KB is refused, however small its jsonb');
select throws_ok(
  format($$select private.enqueue_webhook_event(%L, 'PROCESS_REVISED',
                    (select jsonb_build_object('tiny', jsonb_agg(1e-16383)) from generate_series(1, 17)))$$, :'company_a'),
  '54000', null,
  'so is one whose tiny numbers (0.000...1, 16,385 characters each) do');
select is((select count(*)::integer from public.webhook_events), 2,
  'the refused payloads left no event');
select is((select count(*)::integer from public.webhook_deliveries), 4,
  'the refused payloads left no delivery');

-- Who may call it: the machinery (service role), not API users.
select tests.authenticate_as_anon();
select throws_ok(
  format($$select private.enqueue_webhook_event(%L, 'PROCESS_REVISED', '{}')$$, :'company_a'),
  '42501', 'permission denied for schema private',
  'anon cannot reach the outbox API');
select tests.clear_authentication();

select tests.authenticate_as_service_role();
select isnt(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"by": "service_role"}'), null,
  'the service role can enqueue');
select tests.clear_authentication();
select is(
  (select count(*)::integer from public.webhook_deliveries d
     join public.webhook_events e on e.id = d.event_id
    where e.payload -> 'data' ->> 'by' = 'service_role'),
  2,
  'and its event fans out like any other');

-- A null company is not a valid event.
select throws_ok(
  $$select private.enqueue_webhook_event(null, 'PROCESS_REVISED', '{}')$$,
  '22004', 'company_id is required',
  'enqueueing an event without a company is refused with 22004');
select is((select count(*)::integer from public.webhook_events), 3, 'nothing else was recorded');

select * from finish();
rollback;

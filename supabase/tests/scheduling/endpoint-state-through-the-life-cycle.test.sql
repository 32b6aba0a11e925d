-- An endpoint's scheduling state (private.webhook_endpoints.ready_at: when a claim should
-- next look at it) is right at every step of its deliveries' life: created with the
-- webhook; announced by the business path with signals only (the endpoint row is never
-- written there); after a claim: now() while it has more due work, else when its earliest
-- lease or retry comes due; after a record, a lease expiry and a release; null once it has
-- nothing to do, after a disable; gone with the webhook, its stray signals cleaned up.
-- "Leased" counts its deliveries in flight (unexpired leases): what the cap is checked against.
begin;
select plan(30);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://one.example.com/hook') as hook \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://two.example.com/hook') as other \gset

-- ready_at, deliveries in flight, pending signals of one endpoint.
create function pg_temp.schedule(hook uuid)
returns table (ready_at timestamptz, leased integer, signals integer)
language sql as $$
  select e.ready_at,
         (select count(*)::integer from public.webhook_deliveries d
           where d.webhook_id = hook and d.state = 'pending' and d.lease_owner is not null and d.lease_expires_at > now()),
         (select count(*)::integer from private.webhook_endpoint_signals s where s.webhook_id = hook)
    from private.webhook_endpoints e
   where e.webhook_id = hook
$$;
select tests.create_claims_table();

-- Created with the webhook ----------------------------------------------------------------
select results_eq(
  format($$select company_id, ready_at, consecutive_failures, failing_since, circuit_opened_at
             from private.webhook_endpoints where webhook_id = %L$$, :'hook'),
  format($$values (%L::uuid, null::timestamptz, 0, null::timestamptz, null::timestamptz)$$, :'company_a'),
  'a new webhook has its endpoint row: its company, nothing scheduled, healthy');
select is(private.next_dispatch_at(), null, 'nothing anywhere: no dispatch is scheduled');

-- Enqueue: signals only ---------------------------------------------------------------------
select ctid as hook_row_before from private.webhook_endpoints where webhook_id = :'hook' \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n))
  from generate_series(1, 3) n;
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (null::timestamptz, 0, 3)$$,
  'three events: one signal per event (one per statement that created deliveries for it), ready_at untouched');
select is((select count(*)::integer from private.webhook_endpoint_signals where webhook_id = :'other'), 3,
  'every subscribed endpoint gets its own signal');
select is((select ctid from private.webhook_endpoints where webhook_id = :'hook'), :'hook_row_before'::tid,
  'the business path never writes the endpoint row (no new row version)');
select is(private.next_dispatch_at(), now(), 'with signals waiting, the next dispatch is now');

-- Claim ---------------------------------------------------------------------------------
-- Only this endpoint is looked at in the next steps: the other one is disabled (its work cancelled).
update public.webhooks set is_active = false where id = :'other';
insert into claims select 'c1', * from private.claim_due_deliveries('worker-1', 2, 60);
select is((select count(*)::integer from claims where call = 'c1'), 2, 'a claim of 2 takes 2 of the 3');
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (now(), 2, 0)$$,
  'after the claim: 2 in flight, signals consumed, ready now (it has more due work)');
insert into claims select 'c2', * from private.claim_due_deliveries('worker-1', 10, 60);
select is((select count(*)::integer from claims where call = 'c2'), 1, 'the next claim takes the third');
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (now() + interval '60 seconds', 3, 0)$$,
  'all 3 in flight and nothing else due: ready when the earliest lease runs out');
select is(private.next_dispatch_at(), now() + interval '60 seconds', 'which is when the next dispatch is scheduled');

-- Record ----------------------------------------------------------------------------------
select array_agg(delivery_id order by delivery_id) as leased from claims \gset
select is(private.record_delivery_results('worker-1', jsonb_build_array(
    jsonb_build_object('delivery_id', (:'leased'::uuid[])[1], 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 3),
    jsonb_build_object('delivery_id', (:'leased'::uuid[])[2], 'attempt_number', 1, 'outcome', 'failed', 'status', 500, 'duration_ms', 3,
                       'next_attempt_at', now() + interval '5 minutes')), interval '5 days'),
  2, 'one success and one failure to retry in 5 minutes are recorded');
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (now() + interval '60 seconds', 1, 0)$$,
  'after the record: 1 in flight; ready when its lease runs out (before the retry in 5 minutes)');

-- Lease expiry --------------------------------------------------------------------------
select tests.time_passes('61 seconds');
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (now() - interval '1 second', 0, 0)$$,
  'the lease ran out: nothing in flight, and the endpoint is ready (since a second ago)');
insert into claims select 'c3', * from private.claim_due_deliveries('worker-2', 10, 60);
select results_eq($$select delivery_id, attempt_number from claims where call = 'c3'$$,
  format($$values (%L::uuid, 2)$$, (:'leased'::uuid[])[3]),
  'the expired delivery is claimed again (attempt 2), the retry is not due yet');
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (now() + interval '60 seconds', 1, 0)$$,
  'ready when the new lease runs out');

-- Release -------------------------------------------------------------------------------
select is(private.release_deliveries('worker-2', array[(:'leased'::uuid[])[3]]), 1, 'the dispatcher gives the lease back');
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (now(), 0, 0)$$,
  'released: nothing in flight, ready now');
select tests.time_passes('4 minutes');
insert into claims select 'c4', * from private.claim_due_deliveries('worker-3', 10, 60);
select is((select count(*)::integer from claims where call = 'c4'), 2,
  'four minutes later a claim takes the released delivery and the retry that came due');
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (now() + interval '60 seconds', 2, 0)$$,
  'both in flight; ready when the first lease runs out');

-- Disable ---------------------------------------------------------------------------------
select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{"n": 4}') \gset
update public.webhooks set is_active = false where id = :'hook';
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (null::timestamptz, 0, 1)$$,
  'disabled: every pending delivery cancelled (none in flight), nothing scheduled');
select is(private.next_dispatch_at(), now(), 'the signal of the last event is still there for a claim to consume');
select is((select count(*)::integer from private.claim_due_deliveries('worker-3', 10, 60)), 0, 'a claim finds nothing to send');
select results_eq(format('select * from pg_temp.schedule(%L)', :'hook'),
  $$values (null::timestamptz, 0, 0)$$,
  'and consumes the signal');
select is(private.next_dispatch_at(), null, 'nothing is scheduled any more');

-- A business transaction that read the endpoint as active commits after the disable: its
-- delivery and signal appear now (as that commit would make them), pending for a disabled endpoint.
insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at)
select :'company_a', e.id, :'hook', now() from public.webhook_events e limit 1
returning id as late_delivery \gset
select is((select count(*)::integer from private.claim_due_deliveries('worker-3', 10, 60)), 0,
  'the next claim does not send a delivery committed after its endpoint was disabled');
select results_eq(format($$select state::text, last_error from public.webhook_deliveries where id = %L$$, :'late_delivery'),
  $$values ('cancelled'::text, 'endpoint disabled: disabled by an admin'::text)$$,
  'it cancels it, saying why');

-- Delete ----------------------------------------------------------------------------------
update public.webhooks set is_active = true where id = :'hook';
select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{"n": 5}') as last_event \gset
delete from public.webhooks where id = :'hook';
select results_eq(
  format($$select (select count(*)::integer from private.webhook_endpoints where webhook_id = %L),
                  (select state::text from public.webhook_deliveries where event_id = %L)$$, :'hook', :'last_event'),
  $$values (0, 'cancelled')$$,
  'deleting the webhook deletes its endpoint row and cancels its pending delivery');
select is((select count(*)::integer from private.claim_due_deliveries('worker-3', 10, 60)), 0, 'a claim finds nothing');
select is((select count(*)::integer from private.webhook_endpoint_signals), 0,
  'and removes the signals of the endpoint that no longer exists');

select * from finish();
rollback;

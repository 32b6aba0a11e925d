-- public.cancel_webhook_delivery(delivery_id): an active ADMIN of the delivery's company
-- (or the service role) ends a pending delivery as cancelled, e.g. the head of an ordered
-- key that keeps failing, so that the ones behind it go. Everyone else gets the same
-- error whether the delivery exists or not (no probing); anon may not call it. A delivery
-- that has already ended is refused with 55000 and left as it was. Cancelling the head of
-- a key releases the next one; a result for a cancelled delivery in flight moves nothing.
begin;
select plan(22);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/ordered') as ordered \gset
update public.webhooks set delivery_order = 'ordered' where id = :'ordered';
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('process_id', 'p1', 'revision', r)))
  from generate_series(2, 5) r \gset
select array_agg(id order by ordering_seq) as d from public.webhook_deliveries where webhook_id = :'ordered' \gset
select format('delivery %s does not exist or you are not an active ADMIN of its company', (:'d'::uuid[])[1]) as denied,
       gen_random_uuid() as unknown_id \gset

-- Revision 2 is in flight, the others parked behind it.
select is((select delivery_id from private.claim_due_deliveries('worker-1', 10, 60)), (:'d'::uuid[])[1], 'revision 2 is in flight');

-- Denied ------------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok(format('select public.cancel_webhook_delivery(%L)', (:'d'::uuid[])[1]),
  '42501', 'permission denied for function cancel_webhook_delivery', 'anon cannot call it');
select tests.clear_authentication();
select tests.authenticate_as(:'member_a');
select throws_ok(format('select public.cancel_webhook_delivery(%L)', (:'d'::uuid[])[1]), '42501', :'denied', 'a MEMBER cannot cancel');
select tests.clear_authentication();
select tests.authenticate_as(:'operator_a');
select throws_ok(format('select public.cancel_webhook_delivery(%L)', (:'d'::uuid[])[1]), '42501', :'denied', 'an OPERATOR cannot cancel');
select tests.clear_authentication();
select tests.authenticate_as(:'inactive_admin_a');
select throws_ok(format('select public.cancel_webhook_delivery(%L)', (:'d'::uuid[])[1]), '42501', :'denied', 'an inactive ADMIN cannot cancel');
select tests.clear_authentication();
select tests.authenticate_as(:'admin_b');
select throws_ok(format('select public.cancel_webhook_delivery(%L)', (:'d'::uuid[])[1]), '42501', :'denied', 'another company''s ADMIN cannot cancel');
select throws_ok(format('select public.cancel_webhook_delivery(%L)', :'unknown_id'), '42501',
  format('delivery %s does not exist or you are not an active ADMIN of its company', :'unknown_id'),
  'and gets the same error for a delivery that does not exist');
select tests.clear_authentication();
select tests.authenticate_as(:'no_profile');
select throws_ok(format('select public.cancel_webhook_delivery(%L)', (:'d'::uuid[])[1]), '42501', :'denied', 'a user without a profile cannot cancel');
select tests.clear_authentication();
select results_eq(format($$select state::text, lease_owner from public.webhook_deliveries where id = %L$$, (:'d'::uuid[])[1]),
  $$values ('pending'::text, 'worker-1'::text)$$,
  'the refused calls changed nothing');

-- Allowed ------------------------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select is(public.cancel_webhook_delivery((:'d'::uuid[])[1]), (:'d'::uuid[])[1], 'the ADMIN cancels the head in flight; its id comes back');
select tests.clear_authentication();
select results_eq(format($$select state::text, completed_at, next_attempt_at, lease_owner, lease_expires_at, last_error
                            from public.webhook_deliveries where id = %L$$, (:'d'::uuid[])[1]),
  $$values ('cancelled'::text, now(), null::timestamptz, null::text, null::timestamptz, 'cancelled by an admin'::text)$$,
  'it is cancelled, closed and unleased, saying why');
select results_eq(format($$select next_attempt_at from public.webhook_deliveries where id = any (%L::uuid[]) order by ordering_seq$$, :'d'),
  $$values (null::timestamptz), (now()), ('infinity'), ('infinity')$$,
  'the next of its key is due now; the rest stay parked');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'ordered'), now(), 'the endpoint is ready now');
select is(private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', (:'d'::uuid[])[1], 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days'),
  0, 'the result of the attempt that was in flight moves nothing');
select is((select state::text from public.webhook_deliveries where id = (:'d'::uuid[])[1]), 'cancelled', 'it stays cancelled');
select is((select delivery_id from private.claim_due_deliveries('worker-1', 10, 60)), (:'d'::uuid[])[2], 'revision 3 goes next');

-- A parked delivery can be cancelled too: the key's order is kept for the others.
select tests.authenticate_as(:'admin_a');
select is(public.cancel_webhook_delivery((:'d'::uuid[])[3]), (:'d'::uuid[])[3], 'the ADMIN cancels revision 4, parked');
select tests.clear_authentication();
select results_eq(format($$select state::text, next_attempt_at from public.webhook_deliveries where id = any (%L::uuid[]) order by ordering_seq$$, :'d'),
  $$values ('cancelled'::text, null::timestamptz), ('pending', now() + interval '60 seconds'), ('cancelled', null), ('pending', 'infinity')$$,
  'revision 3 stays in flight, revision 5 parked behind it');

-- Ended deliveries are refused.
select tests.authenticate_as(:'admin_a');
select throws_ok(format('select public.cancel_webhook_delivery(%L)', (:'d'::uuid[])[1]),
  '55000', format('delivery %s has already ended', (:'d'::uuid[])[1]), 'a delivery that already ended is refused with 55000');
select tests.clear_authentication();
select private.record_delivery_results('worker-1', jsonb_build_array(jsonb_build_object(
    'delivery_id', (:'d'::uuid[])[2], 'attempt_number', 1, 'outcome', 'succeeded', 'status', 200, 'duration_ms', 1)), interval '5 days') \gset
select tests.authenticate_as_service_role();
select throws_ok(format('select public.cancel_webhook_delivery(%L)', (:'d'::uuid[])[2]),
  '55000', format('delivery %s has already ended', (:'d'::uuid[])[2]), 'so is one that succeeded (here for the service role)');
select is(public.cancel_webhook_delivery((:'d'::uuid[])[4]), (:'d'::uuid[])[4], 'the service role may cancel a pending one');
select tests.clear_authentication();
select results_eq(format($$select state::text, completed_at from public.webhook_deliveries where id = any (%L::uuid[]) order by ordering_seq$$, :'d'),
  $$values ('cancelled'::text, now()), ('succeeded', now()), ('cancelled', now()), ('cancelled', now())$$,
  'the refused cancellations left the ended deliveries as they were');

select * from finish();
rollback;

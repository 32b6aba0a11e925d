-- Admin RPCs: send_test_webhook, redeliver_webhook_delivery, replay_webhook_deliveries,
-- get_webhook_secret, rotate_webhook_secret. Each refuses everyone but an active ADMIN of
-- the webhook's company and the service role, with the same error whether the id exists
-- or not (no probing); then what each one does.
begin;
select plan(65);

-- The cast (tests.create_cast, helpers/setup.sql); the descriptions call its company A
-- "Acme" and its company B "Globex".
select * from tests.create_cast() \gset

select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/hook') as hook_a \gset
-- Subscribed to WEBHOOK_TEST itself: a test sent to hook_a must not reach it.
select tests.create_webhook(:'company_a', 'WEBHOOK_TEST', 'https://a-tests.example.com/hook') as hook_a_tests \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 0}') as event_a \gset
select id as delivery_a from public.webhook_deliveries where event_id = :'event_a' \gset
select secret as first_secret from private.webhook_secrets where webhook_id = :'hook_a' \gset

select format('webhook %s does not exist or you are not an active ADMIN of its company', :'hook_a') as webhook_denied,
       format('delivery %s does not exist or you are not an active ADMIN of its company', :'delivery_a') as delivery_denied \gset

-- anon: no EXECUTE at all -------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok(format('select public.send_test_webhook(%L)', :'hook_a'),
  '42501', 'permission denied for function send_test_webhook', 'anon cannot call send_test_webhook');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'delivery_a'),
  '42501', 'permission denied for function redeliver_webhook_delivery', 'anon cannot call redeliver_webhook_delivery');
select throws_ok(format($$select public.replay_webhook_deliveries(%L, now() - interval '1 day')$$, :'hook_a'),
  '42501', 'permission denied for function replay_webhook_deliveries', 'anon cannot call replay_webhook_deliveries');
select throws_ok(format('select public.get_webhook_secret(%L)', :'hook_a'),
  '42501', 'permission denied for function get_webhook_secret', 'anon cannot call get_webhook_secret');
select throws_ok(format('select public.rotate_webhook_secret(%L)', :'hook_a'),
  '42501', 'permission denied for function rotate_webhook_secret', 'anon cannot call rotate_webhook_secret');
select tests.clear_authentication();

-- A MEMBER of the company -------------------------------------------------------------
select tests.authenticate_as(:'member_a');
select throws_ok(format('select public.send_test_webhook(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'a MEMBER cannot send a test');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'delivery_a'),
  '42501', :'delivery_denied', 'a MEMBER cannot redeliver');
select throws_ok(format($$select public.replay_webhook_deliveries(%L, now() - interval '1 day')$$, :'hook_a'),
  '42501', :'webhook_denied', 'a MEMBER cannot replay');
select throws_ok(format('select public.get_webhook_secret(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'a MEMBER cannot read the secret');
select throws_ok(format('select public.rotate_webhook_secret(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'a MEMBER cannot rotate the secret');
select tests.clear_authentication();

-- An ADMIN of another company -----------------------------------------------------------
select tests.authenticate_as(:'admin_b');
select throws_ok(format('select public.send_test_webhook(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'another company''s ADMIN cannot send a test');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'delivery_a'),
  '42501', :'delivery_denied', 'another company''s ADMIN cannot redeliver');
select throws_ok(format($$select public.replay_webhook_deliveries(%L, now() - interval '1 day')$$, :'hook_a'),
  '42501', :'webhook_denied', 'another company''s ADMIN cannot replay');
select throws_ok(format('select public.get_webhook_secret(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'another company''s ADMIN cannot read the secret');
select throws_ok(format('select public.rotate_webhook_secret(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'another company''s ADMIN cannot rotate the secret');
select tests.clear_authentication();

-- An inactive ADMIN of the company ------------------------------------------------------
select tests.authenticate_as(:'inactive_admin_a');
select throws_ok(format('select public.send_test_webhook(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'an inactive ADMIN cannot send a test');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'delivery_a'),
  '42501', :'delivery_denied', 'an inactive ADMIN cannot redeliver');
select throws_ok(format($$select public.replay_webhook_deliveries(%L, now() - interval '1 day')$$, :'hook_a'),
  '42501', :'webhook_denied', 'an inactive ADMIN cannot replay');
select throws_ok(format('select public.get_webhook_secret(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'an inactive ADMIN cannot read the secret');
select throws_ok(format('select public.rotate_webhook_secret(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'an inactive ADMIN cannot rotate the secret');
select tests.clear_authentication();

-- A signed-in user with no Serial profile -----------------------------------------------
select tests.authenticate_as(:'no_profile');
select throws_ok(format('select public.send_test_webhook(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'a user without a profile cannot send a test');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'delivery_a'),
  '42501', :'delivery_denied', 'a user without a profile cannot redeliver');
select throws_ok(format($$select public.replay_webhook_deliveries(%L, now() - interval '1 day')$$, :'hook_a'),
  '42501', :'webhook_denied', 'a user without a profile cannot replay');
select throws_ok(format('select public.get_webhook_secret(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'a user without a profile cannot read the secret');
select throws_ok(format('select public.rotate_webhook_secret(%L)', :'hook_a'),
  '42501', :'webhook_denied', 'a user without a profile cannot rotate the secret');
select tests.clear_authentication();

-- An ADMIN of a deactivated company.
update public.companies set is_active = false where id = :'company_b';
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://b.example.com/hook') as hook_b \gset
select tests.authenticate_as(:'admin_b');
select throws_ok(format('select public.get_webhook_secret(%L)', :'hook_b'),
  '42501', format('webhook %s does not exist or you are not an active ADMIN of its company', :'hook_b'),
  'the ADMIN of a deactivated company cannot read its secrets');
select tests.clear_authentication();

-- The ADMIN of the company: allowed, and ids cannot be probed -------------------------------
select tests.authenticate_as(:'admin_a');
select isnt(public.send_test_webhook(:'hook_a'), null, 'the ADMIN can send a test');
select isnt(public.redeliver_webhook_delivery(:'delivery_a'), null, 'the ADMIN can redeliver');
select is(public.replay_webhook_deliveries(:'hook_a', now() - interval '1 day'), 0, 'the ADMIN can replay');
select is(public.get_webhook_secret(:'hook_a'), :'first_secret'::text, 'the ADMIN can read the current secret');
select public.rotate_webhook_secret(:'hook_a') as second_secret \gset
select isnt(:'second_secret'::text, :'first_secret'::text, 'the ADMIN can rotate the secret');

select gen_random_uuid() as unknown_id \gset
select throws_ok(format('select public.send_test_webhook(%L)', :'unknown_id'),
  '42501', format('webhook %s does not exist or you are not an active ADMIN of its company', :'unknown_id'),
  'an unknown webhook id gets the same error as a forbidden one');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'unknown_id'),
  '42501', format('delivery %s does not exist or you are not an active ADMIN of its company', :'unknown_id'),
  'an unknown delivery id gets the same error as a forbidden one');
select throws_ok(format('select public.get_webhook_secret(%L)', :'unknown_id'),
  '42501', format('webhook %s does not exist or you are not an active ADMIN of its company', :'unknown_id'),
  'no secret for an unknown webhook id either');
select tests.clear_authentication();

-- The service role: allowed --------------------------------------------------------------
select tests.authenticate_as_service_role();
select isnt(public.send_test_webhook(:'hook_a'), null, 'the service role can send a test');
select isnt(public.redeliver_webhook_delivery(:'delivery_a'), null, 'the service role can redeliver');
select is(public.replay_webhook_deliveries(:'hook_a', now() - interval '1 day'), 0, 'the service role can replay');
select is(public.get_webhook_secret(:'hook_a'), :'second_secret'::text, 'the service role can read the current secret');
select public.rotate_webhook_secret(:'hook_a') as third_secret \gset
select isnt(:'third_secret'::text, :'second_secret'::text, 'the service role can rotate the secret');
select tests.clear_authentication();

-- send_test_webhook ------------------------------------------------------------------
delete from public.webhook_deliveries where event_id <> :'event_a';
delete from public.webhook_events where id <> :'event_a';

select tests.authenticate_as(:'admin_a');
select public.send_test_webhook(:'hook_a') as test_delivery \gset
select tests.clear_authentication();

select event_id as test_event from public.webhook_deliveries where id = :'test_delivery' \gset
select results_eq(
  format($$select webhook_id, company_id, state, next_attempt_at, attempt_count from public.webhook_deliveries where id = %L$$, :'test_delivery'),
  format($$values (%L::uuid, %L::uuid, 'pending'::public.webhook_delivery_state, now(), 0)$$, :'hook_a', :'company_a'),
  'send_test_webhook returns a pending delivery to that endpoint, due now');
select results_eq(
  format($$select trigger_type, payload ->> 'type', payload -> 'data' from public.webhook_events where id = %L$$, :'test_event'),
  format($$values ('WEBHOOK_TEST'::text, 'WEBHOOK_TEST'::text,
                   jsonb_build_object('webhook_id', %L::uuid, 'subscribed_trigger_type', 'PROCESS_REVISED',
                                      'message', 'Test event sent from Serial'))$$, :'hook_a'),
  'of a WEBHOOK_TEST event naming the endpoint and what it subscribes to');
select is((select count(*)::integer from public.webhook_deliveries where event_id = :'test_event'), 1,
  'delivered to that endpoint only, not to endpoints subscribed to WEBHOOK_TEST');

-- redeliver_webhook_delivery -----------------------------------------------------------
update public.webhook_deliveries
   set state = 'failed', next_attempt_at = null, completed_at = now(), attempt_count = 8, last_status = 500
 where id = :'delivery_a';
select tests.authenticate_as(:'admin_a');
select public.redeliver_webhook_delivery(:'delivery_a') as redelivery \gset
select tests.clear_authentication();

select isnt(:'redelivery'::uuid, :'delivery_a'::uuid, 'a redelivery is a new delivery (a new webhook-id)');
select results_eq(
  format($$select event_id, webhook_id, company_id, redelivery_of, state, attempt_count, next_attempt_at, last_status
             from public.webhook_deliveries where id = %L$$, :'redelivery'),
  format($$values (%L::uuid, %L::uuid, %L::uuid, %L::uuid, 'pending'::public.webhook_delivery_state, 0, now(), null::integer)$$,
         :'event_a', :'hook_a', :'company_a', :'delivery_a'),
  'of the same event to the same endpoint, pending from scratch, pointing at the original');
select is((select state from public.webhook_deliveries where id = :'delivery_a'), 'failed',
  'the original delivery is left as it was');

-- replay_webhook_deliveries -------------------------------------------------------------
select tests.create_webhook(:'company_a', 'PROCESS_DELETED', 'https://replay.example.com/hook') as hook_replay \gset
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_DELETED', jsonb_build_object('case', c)))
  from unnest(array['failed', 'cancelled', 'succeeded', 'pending', 'old failed', 'failed then redelivered']) c \gset
create temporary table replay_cases as
  select e.payload -> 'data' ->> 'case' as case_name, e.id as event_id, d.id as delivery_id
    from public.webhook_events e join public.webhook_deliveries d on d.event_id = e.id
   where d.webhook_id = :'hook_replay';

update public.webhook_deliveries d
   set state = case when c.case_name in ('succeeded') then 'succeeded'::public.webhook_delivery_state
                    when c.case_name = 'cancelled' then 'cancelled'
                    else 'failed' end,
       next_attempt_at = null, completed_at = now()
  from replay_cases c
 where c.delivery_id = d.id and c.case_name <> 'pending';
update public.webhook_deliveries d
   set created_at = now() - interval '3 days'
  from replay_cases c where c.delivery_id = d.id and c.case_name = 'old failed';
insert into public.webhook_deliveries (company_id, event_id, webhook_id, state, completed_at, redelivery_of)
select :'company_a', c.event_id, :'hook_replay', 'succeeded', now(), c.delivery_id
  from replay_cases c where c.case_name = 'failed then redelivered';

select tests.authenticate_as(:'admin_a');
select is(public.replay_webhook_deliveries(:'hook_replay', now() - interval '1 day'), 2,
  'replay counts the events since then whose deliveries all failed or were cancelled');
select tests.clear_authentication();
select set_eq(
  format($$select c.case_name from public.webhook_deliveries d join replay_cases c on c.event_id = d.event_id
            where d.webhook_id = %L and d.state = 'pending' and d.redelivery_of is null and d.id <> c.delivery_id$$, :'hook_replay'),
  $$values ('failed'), ('cancelled')$$,
  'and sends exactly those again, as new pending deliveries');

select tests.authenticate_as(:'admin_a');
select is(public.replay_webhook_deliveries(:'hook_replay', now() - interval '1 day'), 0,
  'replaying again sends nothing: those events are being delivered');
select is(public.replay_webhook_deliveries(:'hook_replay', now() - interval '7 days'), 1,
  'an earlier since reaches the older failed event');
select throws_ok(format('select public.replay_webhook_deliveries(%L, %L)', :'hook_replay', now() + interval '1 minute'),
  '22023', format('since must be a time in the past, got %s', now() + interval '1 minute'),
  'a future since is refused');
select throws_ok(format('select public.replay_webhook_deliveries(%L, null)', :'hook_replay'),
  '22023', 'since must be a time in the past, got null',
  'a null since is refused');
select tests.clear_authentication();

-- Disabled endpoints -------------------------------------------------------------------
update public.webhooks set is_active = false where id = :'hook_a';
select tests.authenticate_as(:'admin_a');
select throws_ok(format('select public.send_test_webhook(%L)', :'hook_a'),
  '55000', format('webhook %s is disabled (disabled by an admin)', :'hook_a'),
  'no test to a disabled endpoint');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'delivery_a'),
  '55000', format('webhook %s is disabled (disabled by an admin)', :'hook_a'),
  'no redelivery to a disabled endpoint');
select throws_ok(format($$select public.replay_webhook_deliveries(%L, now() - interval '1 day')$$, :'hook_a'),
  '55000', format('webhook %s is disabled (disabled by an admin)', :'hook_a'),
  'no replay to a disabled endpoint');
select is(public.get_webhook_secret(:'hook_a'), :'third_secret'::text, 'its secret can still be read');
select tests.clear_authentication();

-- Deleted endpoint.
select id as replay_delivery from public.webhook_deliveries where webhook_id = :'hook_replay' limit 1 \gset
delete from public.webhooks where id = :'hook_replay';
select tests.authenticate_as(:'admin_a');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'replay_delivery'),
  '55000', format('the endpoint of delivery %s was deleted', :'replay_delivery'),
  'no redelivery when the endpoint was deleted');
select tests.clear_authentication();

-- Secrets: reveal and rotate -------------------------------------------------------------
update public.webhooks set is_active = true where id = :'hook_a';
select matches(:'first_secret'::text, '^whsec_[A-Za-z0-9+/]{43}=$', 'a secret is whsec_ + base64');
select is(length(decode(substr(:'first_secret', 7), 'base64')), 32, 'of 32 random bytes');
select matches(:'third_secret'::text, '^whsec_[A-Za-z0-9+/]{43}=$', 'a rotated secret has the same format');
select is(length(decode(substr(:'third_secret', 7), 'base64')), 32, 'and the same strength');

select tests.authenticate_as(:'admin_a');
select public.rotate_webhook_secret(:'hook_a') as fourth_secret \gset
select is(public.get_webhook_secret(:'hook_a'), :'fourth_secret'::text, 'after a rotation the current secret is the new one');
select tests.clear_authentication();
select results_eq(
  format($$select secret, previous_secret, previous_secret_expires_at, rotated_at from private.webhook_secrets where webhook_id = %L$$, :'hook_a'),
  format($$values (%L::text, %L::text, now() + interval '24 hours', now())$$, :'fourth_secret', :'third_secret'),
  'the previous secret is kept for 24 hours');
select is(private.webhook_signing_secrets(:'hook_a'), array[:'fourth_secret', :'third_secret']::text[],
  'and both sign during the overlap');
select is((select count(distinct s)::integer
             from unnest(array[:'first_secret', :'second_secret', :'third_secret', :'fourth_secret']::text[]) s), 4,
  'every rotation produced a different secret');
select isnt(
  (select secret from private.webhook_secrets where webhook_id = :'hook_a'),
  (select secret from private.webhook_secrets where webhook_id = :'hook_a_tests'),
  'endpoints do not share secrets');

select * from finish();
rollback;

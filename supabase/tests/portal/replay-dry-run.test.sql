-- count_replayable_webhook_deliveries(webhook_id, since): the dry run the portal shows
-- before a replay. Same refusals as replay_webhook_deliveries (same error whether the id
-- exists or not), the same answer as the replay itself, and no change to anything.
begin;
select plan(17);

select * from tests.create_cast(with_webhooks => true) \gset
select format('webhook %s does not exist or you are not an active ADMIN of its company', :'webhook_a1') as denied,
       format('webhook %s does not exist or you are not an active ADMIN of its company', '00000000-0000-4000-8000-000000000000') as denied_unknown \gset

-- Events of every kind for A's first endpoint (as in admin/rpcs.test.sql): failed, cancelled,
-- succeeded, pending, failed 3 days ago, failed then redelivered successfully.
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('case', c)))
  from unnest(array['failed', 'cancelled', 'succeeded', 'pending', 'old failed', 'failed then redelivered']) c \gset
create temporary table cases on commit drop as
  select e.payload -> 'data' ->> 'case' as case_name, e.id as event_id, d.id as delivery_id
    from public.webhook_events e join public.webhook_deliveries d on d.event_id = e.id
   where d.webhook_id = :'webhook_a1';
update public.webhook_deliveries d
   set state = (case when c.case_name = 'succeeded' then 'succeeded' when c.case_name = 'cancelled' then 'cancelled' else 'failed' end)::public.webhook_delivery_state,
       next_attempt_at = null, completed_at = now()
  from cases c where c.delivery_id = d.id and c.case_name <> 'pending';
update public.webhook_deliveries d set created_at = now() - interval '3 days'
  from cases c where c.delivery_id = d.id and c.case_name = 'old failed';
insert into public.webhook_deliveries (company_id, event_id, webhook_id, state, completed_at, redelivery_of)
select :'company_a', c.event_id, :'webhook_a1', 'succeeded', now(), c.delivery_id
  from cases c where c.case_name = 'failed then redelivered';
select count(*) as deliveries_before from public.webhook_deliveries \gset

-- Refused ----------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok(format($$select public.count_replayable_webhook_deliveries(%L, now() - interval '1 day')$$, :'webhook_a1'),
  '42501', 'permission denied for function count_replayable_webhook_deliveries', 'anon cannot call it');
select tests.authenticate_as(:'member_a');
select throws_ok(format($$select public.count_replayable_webhook_deliveries(%L, now() - interval '1 day')$$, :'webhook_a1'),
  '42501', :'denied', 'a MEMBER is refused');
select tests.authenticate_as(:'operator_a');
select throws_ok(format($$select public.count_replayable_webhook_deliveries(%L, now() - interval '1 day')$$, :'webhook_a1'),
  '42501', :'denied', 'an OPERATOR is refused');
select tests.authenticate_as(:'inactive_admin_a');
select throws_ok(format($$select public.count_replayable_webhook_deliveries(%L, now() - interval '1 day')$$, :'webhook_a1'),
  '42501', :'denied', 'an inactive ADMIN is refused');
select tests.authenticate_as(:'admin_b');
select throws_ok(format($$select public.count_replayable_webhook_deliveries(%L, now() - interval '1 day')$$, :'webhook_a1'),
  '42501', :'denied', 'an ADMIN of another company is refused');
select throws_ok($$select public.count_replayable_webhook_deliveries('00000000-0000-4000-8000-000000000000', now() - interval '1 day')$$,
  '42501', :'denied_unknown', 'and an id that does not exist gets the same refusal');

-- Allowed ----------------------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select is(public.count_replayable_webhook_deliveries(:'webhook_a1', now() - interval '1 day'), 2,
  'the ADMIN gets the count: failed and cancelled since then (not succeeded, pending, older, or redelivered ones)');
select is(public.count_replayable_webhook_deliveries(:'webhook_a1', now() - interval '7 days'), 3,
  'an earlier since reaches the older failed event');
select is(public.count_replayable_webhook_deliveries(:'webhook_a2', now() - interval '7 days'), 0,
  'an endpoint with nothing lost counts 0');
select throws_ok(format('select public.count_replayable_webhook_deliveries(%L, %L)', :'webhook_a1', now() + interval '1 minute'),
  '22023', format('since must be a time in the past, got %s', now() + interval '1 minute'), 'a future since is refused, as by the replay');
select throws_ok(format('select public.count_replayable_webhook_deliveries(%L, null)', :'webhook_a1'),
  '22023', 'since must be a time in the past, got null', 'a null since is refused, as by the replay');
select tests.clear_authentication();
select is((select count(*) from public.webhook_deliveries), :'deliveries_before'::bigint, 'counting changed nothing');

-- The dry run and the replay agree -------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select public.count_replayable_webhook_deliveries(:'webhook_a1', now() - interval '7 days') as predicted \gset
select is(public.replay_webhook_deliveries(:'webhook_a1', now() - interval '7 days'), :'predicted'::int,
  'the replay sends exactly as many events as the dry run said');
select is(public.count_replayable_webhook_deliveries(:'webhook_a1', now() - interval '7 days'), 0,
  'after the replay nothing is left to replay (those events are being delivered)');
select tests.clear_authentication();

select tests.authenticate_as_service_role();
select is(public.count_replayable_webhook_deliveries(:'webhook_b', now() - interval '1 day'), 0,
  'the service role may ask about any company''s endpoint');
select tests.clear_authentication();

select is(
  (select p.provolatile from pg_proc p where p.oid = 'public.count_replayable_webhook_deliveries(uuid, timestamptz)'::regprocedure),
  's', 'it is stable: it cannot write'
);
select ok(
  not has_function_privilege('authenticated', 'private.replayable_webhook_events(uuid, timestamptz)', 'EXECUTE'),
  'the predicate behind it is not callable by API users directly'
);

select * from finish();
rollback;

-- private.prune_webhook_history: succeeded deliveries older than the retention age go,
-- with their attempts; failed, cancelled, pending and recent ones stay; events left
-- without any delivery go once they are old. Ages are set by back-dating rows.
begin;
select plan(24);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/hook') as hook_a \gset

select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('case', c))) as enqueued
  from unnest(array['old succeeded', 'recent succeeded', 'old failed', 'old cancelled', 'old pending',
                    'old failed, redelivery succeeded', 'old succeeded, redelivery pending',
                    'old event, delivered lately']) c \gset

create temporary table cases as
  select e.payload -> 'data' ->> 'case' as case_name, e.id as event_id, d.id as delivery_id
    from public.webhook_events e join public.webhook_deliveries d on d.event_id = e.id;

-- Back-date: events and deliveries of the "old" cases were created 40 days ago.
update public.webhook_events e set created_at = now() - interval '40 days'
  from cases c where c.event_id = e.id and c.case_name like 'old%';
update public.webhook_events e set created_at = now() - interval '1 day'
  from cases c where c.event_id = e.id and c.case_name = 'recent succeeded';
update public.webhook_deliveries d
   set created_at = e.created_at,
       state = case when c.case_name like '%failed%' then 'failed'::public.webhook_delivery_state
                    when c.case_name = 'old cancelled' then 'cancelled'
                    when c.case_name = 'old pending' then 'pending'
                    else 'succeeded' end,
       next_attempt_at = case when c.case_name = 'old pending' then now() + interval '1 hour' end,
       completed_at = case when c.case_name = 'old pending' then null
                           when c.case_name in ('recent succeeded') then now() - interval '1 day'
                           when c.case_name = 'old event, delivered lately' then now() - interval '2 days'
                           else now() - interval '40 days' end
  from cases c join public.webhook_events e on e.id = c.event_id
 where c.delivery_id = d.id;

-- Redeliveries.
insert into public.webhook_deliveries (company_id, event_id, webhook_id, state, completed_at, redelivery_of, created_at)
select :'company_a', c.event_id, :'hook_a', 'succeeded', now() - interval '39 days', c.delivery_id, now() - interval '39 days'
  from cases c where c.case_name = 'old failed, redelivery succeeded'
returning id as redelivery_succeeded \gset
insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, redelivery_of)
select :'company_a', c.event_id, :'hook_a', now(), c.delivery_id
  from cases c where c.case_name = 'old succeeded, redelivery pending'
returning id as redelivery_pending \gset

-- Attempts for every delivery.
insert into public.webhook_delivery_attempts (delivery_id, company_id, attempt_number, outcome, status)
select d.id, d.company_id, n, 'succeeded', 200 from public.webhook_deliveries d, generate_series(1, 2) n;

-- Events without deliveries (e.g. left behind by an earlier prune).
insert into public.webhook_events (company_id, trigger_type, payload, created_at)
values (:'company_a', 'PROCESS_REVISED', '{"data": {"case": "old orphan"}}', now() - interval '40 days')
returning id as old_orphan_event \gset
insert into public.webhook_events (company_id, trigger_type, payload, created_at)
values (:'company_a', 'PROCESS_REVISED', '{"data": {"case": "recent orphan"}}', now() - interval '2 hours')
returning id as recent_orphan_event \gset

select is((select count(*)::integer from public.webhook_deliveries), 10, 'setup: 10 deliveries');

-- Argument validation ----------------------------------------------------------------
select throws_ok($$select private.prune_webhook_history(interval '59 minutes')$$,
  '22023', 'older_than must be at least 1 hour, got 00:59:00', 'a retention under 1 hour is refused');
select throws_ok($$select private.prune_webhook_history(null)$$,
  '22023', 'older_than must be at least 1 hour, got <NULL>', 'a null retention is refused');
select is((select count(*)::integer from public.webhook_deliveries), 10, 'a refused prune deletes nothing');

-- The default, 30 days -------------------------------------------------------------------
select is(private.prune_webhook_history(), 3, 'the default prune removes the 3 succeeded deliveries older than 30 days');

select set_eq(
  $$select c.case_name from cases c join public.webhook_deliveries d on d.id = c.delivery_id$$,
  $$values ('recent succeeded'), ('old failed'), ('old cancelled'), ('old pending'),
           ('old failed, redelivery succeeded'), ('old event, delivered lately')$$,
  'old succeeded deliveries are gone; recent, failed, cancelled and pending ones are kept');
select is((select count(*)::integer from public.webhook_deliveries where id = :'redelivery_succeeded'), 0,
  'an old succeeded redelivery is pruned too');
select results_eq(
  format($$select state, redelivery_of from public.webhook_deliveries where id = %L$$, :'redelivery_pending'),
  $$values ('pending'::public.webhook_delivery_state, null::uuid)$$,
  'a redelivery outlives its pruned original (redelivery_of becomes null)');
select is(
  (select count(*)::integer from public.webhook_delivery_attempts a
    where not exists (select 1 from public.webhook_deliveries d where d.id = a.delivery_id)), 0,
  'the attempts of pruned deliveries are gone with them');
select is((select count(*)::integer from public.webhook_delivery_attempts), 14,
  'the attempts of kept deliveries are kept (7 deliveries x 2)');

select set_eq(
  $$select coalesce(payload -> 'data' ->> 'case', payload -> 'data' -> 'data' ->> 'case') from public.webhook_events$$,
  $$values ('recent succeeded'), ('old failed'), ('old cancelled'), ('old pending'),
           ('old failed, redelivery succeeded'), ('old succeeded, redelivery pending'),
           ('old event, delivered lately'), ('recent orphan')$$,
  'old events left without deliveries are gone; events that still have one, and recent ones, are kept');
select is((select count(*)::integer from public.webhook_events where id = :'old_orphan_event'), 0,
  'an old event that never had a delivery is gone');
select is((select count(*)::integer from public.webhook_events where id = :'recent_orphan_event'), 1,
  'a recent event without deliveries is kept');
select is(
  (select count(*)::integer from public.webhook_events e join cases c on c.event_id = e.id
    where c.case_name = 'old succeeded'), 0,
  'the event of a pruned delivery goes with it when it has nothing else');

select is(private.prune_webhook_history(), 0, 'pruning again finds nothing');

-- A shorter retention --------------------------------------------------------------------
select is(private.prune_webhook_history(interval '12 hours'), 2,
  'with 12 hours, the succeeded deliveries of 1 and 2 days ago go as well');
select is(
  (select count(*)::integer from public.webhook_deliveries where state = 'succeeded'), 0,
  'no succeeded delivery older than 12 hours is left');
select results_eq(
  format($$select count(*) filter (where c.case_name = 'recent succeeded')::integer,
                  count(*) filter (where e.id = %L)::integer
             from public.webhook_events e left join cases c on c.event_id = e.id$$, :'recent_orphan_event'),
  $$values (0, 1)$$,
  'the 1-day-old event left without deliveries goes; the 2-hour-old one stays');
select is((select count(*)::integer from public.webhook_deliveries where state in ('failed', 'cancelled', 'pending')), 5,
  'failed, cancelled and pending deliveries are never pruned');
select is(private.prune_webhook_history(interval '1 hour'), 0, 'one hour is the shortest retention accepted');

-- Who may prune; scheduling without pg_cron --------------------------------------------
select tests.authenticate_as_anon();
select throws_ok($$select private.prune_webhook_history()$$,
  '42501', 'permission denied for schema private', 'anon cannot prune');
select tests.clear_authentication();

select lives_ok($$select private.schedule_webhook_jobs()$$,
  'without pg_cron, scheduling the jobs is a no-op, not an error');
select lives_ok($$select private.wake_dispatcher_if_due()$$,
  'without pg_net, the retry tick is a no-op, not an error');
select is((select count(*)::integer from public.webhook_deliveries), 5, 'the tick changed nothing');

select * from finish();
rollback;

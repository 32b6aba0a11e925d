-- Retention in bounded steps (private.prune_webhook_history_step, the pg_cron job every
-- minute): each step prunes, by the rule of prune-webhook-history.test.sql, only the next
-- prune_pages_per_step heap pages of webhook_deliveries and webhook_events after the cursor
-- (private.webhook_prune_cursor), moves the cursor on, and starts again at page 0 past the
-- end of both tables, a new sweep at most once an hour. An event goes once its last delivery has gone (in that sweep, or the
-- next when the sweep read the event's page first). A bad
-- argument or setting is refused and changes nothing. (A step that finds another one
-- running leaves at once: tests/outbox/prune-steps-never-wait.test.ts, two sessions.)
begin;
select plan(18);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/hook') as hook_a \gset

-- The knob ---------------------------------------------------------------------------------
select is((select prune_pages_per_step from private.webhook_settings), 2000, 'a step reads 2,000 pages by default');
select throws_ok($$update private.webhook_settings set prune_pages_per_step = 0$$,
  '23514', 'new row for relation "webhook_settings" violates check constraint "webhook_settings_prune_pages_per_step_range"',
  'a step of 0 pages is refused, naming the rule');
update private.webhook_settings set prune_pages_per_step = 3;

-- 400 events 40 days old, each delivered then (succeeded), over several pages of both
-- tables; every fifth one failed instead (kept: an ADMIN replays it). 20 delivered lately.
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n)))
  from generate_series(1, 420) n \gset
update public.webhook_events e
   set created_at = case when (e.payload -> 'data' ->> 'n')::integer <= 400 then now() - interval '40 days' else now() - interval '1 day' end;
update public.webhook_deliveries d
   set state = case when (e.payload -> 'data' ->> 'n')::integer % 5 = 0 then 'failed'::public.webhook_delivery_state else 'succeeded' end,
       next_attempt_at = null,
       created_at = e.created_at,
       completed_at = e.created_at
  from public.webhook_events e
 where e.id = d.event_id;
create temporary table eligible as
  select d.id, (d.ctid::text::point)[0]::bigint as page
    from public.webhook_deliveries d
   where d.state = 'succeeded' and d.completed_at < now() - interval '30 days';
select ok((select max(page) from eligible) >= 6, 'the scenario: 320 prunable deliveries over at least 7 pages');

-- One step ----------------------------------------------------------------------------------
select is(private.prune_webhook_history_step(), (select count(*)::integer from eligible where page < 3),
  'a step prunes the prunable deliveries of pages 0-2, and returns how many');
select is((select count(*)::integer from public.webhook_deliveries where id in (select id from eligible where page >= 3)),
  (select count(*)::integer from eligible where page >= 3), 'and none of the later pages');
select results_eq($$select next_page, sweep_started_at, last_step_at from private.webhook_prune_cursor$$,
  $$values (3::bigint, now(), now())$$, 'the cursor is at page 3; the sweep began now');

-- Bad input ---------------------------------------------------------------------------------
select throws_ok($$select private.prune_webhook_history_step(interval '10 minutes')$$,
  '22023', 'older_than must be at least 1 hour, got 00:10:00', 'a retention under an hour is refused');
select is((select next_page from private.webhook_prune_cursor), 3::bigint, 'and moves nothing');

-- The sweep ---------------------------------------------------------------------------------
create function pg_temp.step_until_page_zero() returns integer language plpgsql as $$
declare
  steps integer := 0;
begin
  loop
    perform private.prune_webhook_history_step();
    steps := steps + 1;
    exit when (select next_page from private.webhook_prune_cursor) = 0 or steps > 1000;
  end loop;
  return steps;
end;
$$;
select cmp_ok(pg_temp.step_until_page_zero(), '>=', 2, 'the steps go on until the cursor is back at page 0');
select is((select count(*)::integer from public.webhook_deliveries where id in (select id from eligible)), 0,
  'one sweep prunes every prunable delivery');
select results_eq($$select count(*) filter (where state = 'failed')::integer, count(*) filter (where state = 'succeeded')::integer
                     from public.webhook_deliveries$$,
  $$values (84, 16)$$, 'the failed ones (80 old, 4 recent) and the 16 recent successes stay');
select is((select count(*)::integer from public.webhook_delivery_attempts a
            where not exists (select 1 from public.webhook_deliveries d where d.id = a.delivery_id)), 0,
  'no attempt outlives its delivery');
-- A new sweep starts at most once an hour (small tables are not read whole every minute).
select is(private.prune_webhook_history_step(), 0, 'right after a sweep, a step does nothing');
select is((select next_page from private.webhook_prune_cursor), 0::bigint, 'and leaves the cursor at page 0');
update private.webhook_prune_cursor set sweep_started_at = now() - interval '1 hour';
-- An hour after the last began: a second sweep takes the events whose page the first read
-- before their delivery went.
select cmp_ok(pg_temp.step_until_page_zero(), '>=', 2, 'an hour after the first began, a second sweep');
select is((select count(*)::integer from public.webhook_events e
            where not exists (select 1 from public.webhook_deliveries d where d.event_id = e.id)), 0,
  'and every old event left without a delivery is gone');
select is((select count(*)::integer from public.webhook_events), 100, 'the 80 events of failed deliveries and the 20 recent ones stay');

-- Who may ----------------------------------------------------------------------------------
select tests.create_user('admin@acme.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.authenticate_as(:'admin_a');
select throws_ok($$select private.prune_webhook_history_step()$$,
  '42501', 'permission denied for function prune_webhook_history_step', 'an ADMIN cannot run a step');
select tests.clear_authentication();

select * from finish();
rollback;

-- Retention in bounded steps, not one nightly transaction.
--
-- The 'webhooks-retention' job ran private.prune_webhook_history() once a night: one
-- statement that reads every delivery of every tenant to find the succeeded ones past 30
-- days, deletes a day's worth with their attempts, then reads every old event. Measured on
-- this machine: 1,000,000 such deliveries took 17 s in one transaction (a deployment
-- sending ten million a day: minutes, over a table of 300 million rows). For that long the
-- transaction holds back VACUUM everywhere: the rows the dispatchers churn (signals,
-- endpoint rows, claimed and recorded deliveries) cannot be cleaned, and every tenant's
-- claims read past them. Its WAL comes in one burst.
--
-- Now the job runs every minute and each run prunes a bounded slice:
-- private.prune_webhook_history_step() takes the next prune_pages_per_step heap pages (a
-- new setting, 2,000 = 16 MB) of webhook_deliveries and of webhook_events, by TID range
-- (no index needed, nothing added to the delivery path), and remembers where it stopped in
-- private.webhook_prune_cursor; past the end of both tables it starts again at page 0. Each
-- run is a short transaction of its own; a run that finds another one still running
-- returns 0 at once (SKIP LOCKED), and a new sweep starts at most once an hour (tables
-- smaller than a step are not read whole every minute). Measured here on 1,000,000
-- prunable deliveries (16,394 pages; their events 19,231): 10 steps of about 2 s each,
-- 17.9 s in all. One sweep of the tables takes (pages of the larger / 2,000) minutes: 300 million events (about 6 million
-- pages) in about two days, so a delivery goes at most that long after it passed the
-- retention age; raise prune_pages_per_step to sweep faster (longer steps). An event goes
-- once its last delivery has gone: in that sweep, or the next if the sweep read the
-- event's page first.
--
-- What is pruned has one home, private.prune_webhook_pages(older_than, first_page,
-- end_page). private.prune_webhook_history(older_than) stays, for a manual catch-up in one
-- call: it is that rule over every page, as before.
--
-- Where pg_cron is installed and the job exists, this migration moves it to the new
-- schedule; private.schedule_webhook_jobs() schedules the new one from now on.
-- Test: supabase/tests/retention/prune-in-bounded-steps.test.sql (and
-- prune-webhook-history.test.sql for the rule).

alter table private.webhook_settings
  add column prune_pages_per_step integer not null default 2000
    constraint webhook_settings_prune_pages_per_step_range check (prune_pages_per_step between 1 and 1000000);
comment on column private.webhook_settings.prune_pages_per_step is
  'Heap pages of webhook_deliveries and of webhook_events each retention step (private.prune_webhook_history_step, every minute) reads; a sweep of both tables takes their pages / this many minutes.';
comment on constraint webhook_settings_prune_pages_per_step_range on private.webhook_settings is
  'prune_pages_per_step must be between 1 and 1000000';

create table private.webhook_prune_cursor (
  id boolean primary key default true constraint webhook_prune_cursor_single_row check (id),
  -- The first heap page the next step reads, in both tables.
  next_page bigint not null default 0,
  -- When the running sweep began at page 0 (null: none yet), and the last step.
  sweep_started_at timestamptz,
  last_step_at timestamptz
);
comment on table private.webhook_prune_cursor is
  'Where the retention sweep (private.prune_webhook_history_step) goes on: one row.';
insert into private.webhook_prune_cursor default values;
alter table private.webhook_prune_cursor enable row level security;
revoke all on private.webhook_prune_cursor from anon, authenticated;

-- The rule: in heap pages [first_page, end_page) of each table, succeeded deliveries
-- completed longer ago than older_than (their attempts go with them: on delete cascade),
-- then events older than that with no delivery left. Failed and cancelled deliveries stay:
-- they are what an ADMIN replays.
create function private.prune_webhook_pages(older_than interval, first_page bigint, end_page bigint)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  cutoff timestamptz;
  first_tid tid;
  end_tid tid;
  pruned integer;
begin
  if older_than is null or older_than < interval '1 hour' then
    raise exception 'older_than must be at least 1 hour, got %', older_than using errcode = '22023';
  end if;
  if first_page is null or end_page is null or first_page < 0 or end_page < first_page then
    raise exception 'pages must be a range from 0 up, got % to %', first_page, end_page using errcode = '22023';
  end if;
  cutoff := now() - older_than;
  -- Block numbers stop at 2^32 - 1.
  first_tid := format('(%s,0)', least(first_page, 4294967295))::tid;
  end_tid := format('(%s,0)', least(end_page, 4294967295))::tid;

  delete from public.webhook_deliveries d
   where d.ctid >= first_tid and d.ctid < end_tid
     and d.state = 'succeeded'
     and d.completed_at < cutoff;
  get diagnostics pruned = row_count;

  delete from public.webhook_events e
   where e.ctid >= first_tid and e.ctid < end_tid
     and e.created_at < cutoff
     and not exists (select 1 from public.webhook_deliveries d where d.event_id = e.id);
  return pruned;
end;
$$;
comment on function private.prune_webhook_pages(interval, bigint, bigint) is
  'What retention deletes, in heap pages [first_page, end_page) of webhook_deliveries and webhook_events: succeeded deliveries completed longer ago than older_than (with their attempts), then events older than that left without deliveries. Returns deliveries pruned.';
revoke execute on function private.prune_webhook_pages(interval, bigint, bigint) from public;

create or replace function private.prune_webhook_history(older_than interval default interval '30 days')
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  -- Every page, in this one transaction: a manual catch-up. The schedule runs the steps.
  return private.prune_webhook_pages(older_than, 0, 4294967295);
end;
$$;
comment on function private.prune_webhook_history(interval) is
  'Deletes succeeded deliveries (and their attempts) completed longer ago than older_than, then events left without deliveries, in one transaction (a manual catch-up; the pg_cron job runs private.prune_webhook_history_step). Returns deliveries pruned.';

create function private.prune_webhook_history_step(older_than interval default interval '30 days')
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  here private.webhook_prune_cursor;
  pages integer;
  end_page bigint;
  last_page bigint;
  pruned integer;
begin
  -- One step at a time: a step still running (a slow one, overlapping the next minute)
  -- keeps the cursor, and this one leaves at once.
  select * into here from private.webhook_prune_cursor c for update skip locked;
  if not found then
    return 0;
  end if;
  -- A sweep starts at most once an hour: tables smaller than a step are not read whole
  -- every minute. (A sweep that took longer than that goes straight on to the next.)
  if here.next_page = 0 and here.sweep_started_at > now() - interval '1 hour' then
    return 0;
  end if;
  pages := (select s.prune_pages_per_step from private.webhook_settings s);
  end_page := here.next_page + pages;
  pruned := private.prune_webhook_pages(older_than, here.next_page, end_page);

  -- Past the end of both tables: the next step starts the sweep again at page 0.
  last_page := greatest(pg_catalog.pg_relation_size('public.webhook_deliveries'),
                        pg_catalog.pg_relation_size('public.webhook_events'))
               / pg_catalog.current_setting('block_size')::bigint;
  update private.webhook_prune_cursor c
     set next_page = case when end_page >= last_page then 0 else end_page end,
         sweep_started_at = case when here.next_page = 0 then now() else c.sweep_started_at end,
         last_step_at = now();
  return pruned;
end;
$$;
comment on function private.prune_webhook_history_step(interval) is
  'One retention step (pg_cron, every minute): private.prune_webhook_pages over the next prune_pages_per_step heap pages after private.webhook_prune_cursor, which it moves on (back to 0 past the end; a new sweep at most once an hour). Returns deliveries pruned; 0 at once while another step runs.';
revoke execute on function private.prune_webhook_history_step(interval) from public;

create or replace function private.schedule_webhook_jobs()
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  if to_regnamespace('cron') is null then
    raise notice 'pg_cron is not installed: retries rely on a long-running worker, retention on a manual call';
    return;
  end if;
  -- format(): cron exists only where pg_cron is installed (see wake_dispatcher).
  execute format('select %I.schedule(%L, %L, %L)', 'cron', 'webhooks-retry-tick', '* * * * *',
                 'select private.wake_dispatcher_if_due()');
  execute format('select %I.schedule(%L, %L, %L)', 'cron', 'webhooks-retention', '* * * * *',
                 'select private.prune_webhook_history_step()');
end;
$$;

-- An existing nightly job moves to the steps (cron.schedule replaces a job of that name).
do $$
declare
  scheduled boolean;
begin
  if to_regclass('cron.job') is null then
    return;
  end if;
  execute format('select exists (select 1 from %I.job where jobname = %L)', 'cron', 'webhooks-retention') into scheduled;
  if scheduled then
    execute format('select %I.schedule(%L, %L, %L)', 'cron', 'webhooks-retention', '* * * * *',
                   'select private.prune_webhook_history_step()');
  end if;
end;
$$;

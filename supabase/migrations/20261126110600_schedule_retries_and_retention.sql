-- Retention, and the pg_cron schedule on Supabase: a tick that wakes the dispatcher while
-- retries are due, and a nightly prune. On plain Postgres without pg_cron nothing is
-- scheduled (local workers keep their own timers); run
-- `select private.schedule_webhook_jobs()` after enabling pg_cron later.

create function private.prune_webhook_history(older_than interval default interval '30 days')
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  pruned integer;
begin
  if older_than is null or older_than < interval '1 hour' then
    raise exception 'older_than must be at least 1 hour, got %', older_than using errcode = '22023';
  end if;

  -- Attempts go with their delivery (on delete cascade). Failed and cancelled
  -- deliveries are kept: they are what an admin replays.
  delete from public.webhook_deliveries d
   where d.state = 'succeeded'
     and d.completed_at < now() - older_than;
  get diagnostics pruned = row_count;

  delete from public.webhook_events e
   where e.created_at < now() - older_than
     and not exists (select 1 from public.webhook_deliveries d where d.event_id = e.id);
  return pruned;
end;
$$;
comment on function private.prune_webhook_history(interval) is
  'Deletes succeeded deliveries (and their attempts) completed longer ago than older_than, then events left without deliveries. Returns deliveries pruned.';

create function private.wake_dispatcher_if_due()
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if exists (select 1 from public.webhook_deliveries d
              where d.state = 'pending' and d.next_attempt_at <= now()) then
    perform private.wake_dispatcher();
  end if;
end;
$$;

create function private.schedule_webhook_jobs()
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
  execute format('select %I.schedule(%L, %L, %L)', 'cron', 'webhooks-retention', '17 3 * * *',
                 'select private.prune_webhook_history()');
end;
$$;

revoke execute on function private.prune_webhook_history(interval),
                           private.wake_dispatcher_if_due(),
                           private.schedule_webhook_jobs()
  from public;

select private.schedule_webhook_jobs();

-- A dry run of replay_webhook_deliveries, so an ADMIN sees how many events a replay will
-- send again before confirming it. Same authorization and the same input rule as the
-- replay itself.
--
-- Which events a replay resends, and what it accepts as `since`, is defined once, in
-- private.replayable_webhook_events: the dry run and the replay (redefined at the end of
-- this file on top of it) both read it. supabase/tests/portal/replay-dry-run.test.sql
-- holds the two to the same answer.

create function private.replayable_webhook_events(webhook_id uuid, since timestamptz)
returns setof uuid
language plpgsql
stable
set search_path = ''
as $$
begin
  if since is null or since > now() then
    raise exception 'since must be a time in the past, got %', coalesce(since::text, 'null')
      using errcode = '22023';
  end if;
  -- Every event since then that this endpoint never received and is not still trying to.
  return query
  select d.event_id
    from public.webhook_deliveries d
   where d.webhook_id = replayable_webhook_events.webhook_id
     and d.created_at >= replayable_webhook_events.since
   group by d.event_id
  having bool_and(d.state in ('failed', 'cancelled'));
end;
$$;
comment on function private.replayable_webhook_events(uuid, timestamptz) is
  'Events since then whose deliveries to that endpoint all failed or were cancelled: what a replay resends. since must be in the past.';
revoke execute on function private.replayable_webhook_events(uuid, timestamptz) from public, anon, authenticated;

create function public.count_replayable_webhook_deliveries(webhook_id uuid, since timestamptz)
returns integer
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  target public.webhooks := private.managed_webhook(webhook_id);
begin
  return (select count(*) from private.replayable_webhook_events(target.id, since));
end;
$$;
comment on function public.count_replayable_webhook_deliveries(uuid, timestamptz) is
  'How many events replay_webhook_deliveries(webhook_id, since) would send again now. Changes nothing.';

revoke execute on function public.count_replayable_webhook_deliveries(uuid, timestamptz) from public, anon;
grant execute on function public.count_replayable_webhook_deliveries(uuid, timestamptz) to authenticated, service_role;

-- The replay reads the same definition; what is its own: the endpoint must be active, and
-- the events go again in the order they were created.
create or replace function public.replay_webhook_deliveries(webhook_id uuid, since timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  target public.webhooks := private.managed_webhook(webhook_id);
  lost_ids uuid[] := array(select private.replayable_webhook_events(target.id, since));
  lost record;
  replayed integer := 0;
begin
  perform private.require_active(target);
  for lost in
    select ev.id, ev.ordering_key
      from public.webhook_events ev
     where ev.id = any (lost_ids)
     order by ev.created_at, ev.id
  loop
    perform private.insert_deliveries(target.company_id, lost.id, lost.ordering_key, array[target.id]);
    replayed := replayed + 1;
  end loop;
  return replayed;
end;
$$;

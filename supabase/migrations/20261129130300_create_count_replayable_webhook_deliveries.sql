-- A dry run of replay_webhook_deliveries, so an ADMIN sees how many events a replay will
-- send again before confirming it. Same authorization and the same input rule as the
-- replay itself.
--
-- Which events a replay resends is defined in private.replayable_webhook_events.
-- replay_webhook_deliveries (20261126110500) still states the same predicate inline; a
-- pgTAP test (30-portal-replay-dry-run) holds the two to the same answer until the replay
-- is rewritten on top of this function.

create function private.replayable_webhook_events(webhook_id uuid, since timestamptz)
returns setof uuid
language sql
stable
set search_path = ''
as $$
  -- Every event since then that this endpoint never received and is not still trying to.
  select d.event_id
    from public.webhook_deliveries d
   where d.webhook_id = replayable_webhook_events.webhook_id
     and d.created_at >= replayable_webhook_events.since
   group by d.event_id
  having bool_and(d.state in ('failed', 'cancelled'))
$$;
comment on function private.replayable_webhook_events(uuid, timestamptz) is
  'Events since then whose deliveries to that endpoint all failed or were cancelled: what a replay resends.';
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
  if since is null or since > now() then
    raise exception 'since must be a time in the past, got %', coalesce(since::text, 'null')
      using errcode = '22023';
  end if;
  return (select count(*) from private.replayable_webhook_events(target.id, since));
end;
$$;
comment on function public.count_replayable_webhook_deliveries(uuid, timestamptz) is
  'How many events replay_webhook_deliveries(webhook_id, since) would send again now. Changes nothing.';

revoke execute on function public.count_replayable_webhook_deliveries(uuid, timestamptz) from public, anon;
grant execute on function public.count_replayable_webhook_deliveries(uuid, timestamptz) to authenticated, service_role;

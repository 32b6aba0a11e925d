-- Delivery statistics for the portal: per endpoint and hour, and per endpoint over a window
-- (the last 24 hours by default). Security invoker: they read through the tables' RLS, so a
-- caller sees figures about exactly the deliveries they could select themselves, and
-- nothing (no rows) otherwise.
--
-- Outcome of a delivery, defined once, here:
--   succeeded  state succeeded
--   failed     state failed (retries exhausted, blocked by the SSRF guard, or 410 Gone)
--   retrying   still pending after at least one failed attempt: more than one attempt
--              counted, or one that is not in flight any more (claiming counts the
--              attempt about to be made, so a first attempt in flight is still pending)
--   pending    no attempt has ended yet
--   cancelled  ended unsent: the endpoint was disabled or deleted, or an ADMIN cancelled it
-- A delivery counts in the hour it was created.

create function public.webhook_deliveries_per_hour(
  since timestamptz default now() - interval '24 hours',
  for_webhook_id uuid default null
)
returns table (
  webhook_id uuid,
  hour       timestamptz,
  succeeded  bigint,
  failed     bigint,
  retrying   bigint,
  pending    bigint,
  cancelled  bigint
)
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if since is null then
    raise exception 'since is required (the start of the window)' using errcode = '22004';
  end if;
  return query
    select d.webhook_id,
           date_bin(interval '1 hour', d.created_at, timestamptz '2000-01-01 00:00:00+00'),
           count(*) filter (where d.state = 'succeeded'),
           count(*) filter (where d.state = 'failed'),
           count(*) filter (where d.state = 'pending' and (d.attempt_count > 1 or (d.attempt_count = 1 and d.lease_owner is null))),
           count(*) filter (where d.state = 'pending' and not (d.attempt_count > 1 or (d.attempt_count = 1 and d.lease_owner is null))),
           count(*) filter (where d.state = 'cancelled')
      from public.webhook_deliveries d
     where d.created_at >= webhook_deliveries_per_hour.since
       and d.webhook_id is not null
       and (for_webhook_id is null or d.webhook_id = for_webhook_id)
     group by 1, 2
     order by 1, 2;
end;
$$;
comment on function public.webhook_deliveries_per_hour(timestamptz, uuid) is
  'Deliveries created since then, per endpoint and UTC hour, by outcome (succeeded, failed, retrying, pending, cancelled); for_webhook_id narrows it to one endpoint. Reads through RLS.';

create function public.webhook_endpoint_stats(since timestamptz default now() - interval '24 hours')
returns table (
  webhook_id      uuid,
  deliveries      bigint,
  succeeded       bigint,
  failed          bigint,
  retrying        bigint,
  pending         bigint,
  cancelled       bigint,
  success_rate    numeric,
  last_status     integer,
  last_attempt_at timestamptz
)
language sql
stable
security invoker
set search_path = ''
as $$
  select w.id,
         coalesce(s.succeeded + s.failed + s.retrying + s.pending + s.cancelled, 0),
         coalesce(s.succeeded, 0), coalesce(s.failed, 0), coalesce(s.retrying, 0),
         coalesce(s.pending, 0), coalesce(s.cancelled, 0),
         -- Of the deliveries that were attempted, the share that succeeded (a delivery that
         -- succeeded after retries counts as a success). Null when none was attempted.
         round(s.succeeded::numeric / nullif(s.succeeded + s.failed + s.retrying, 0), 4),
         latest.last_status,
         latest.last_attempt_at
    from public.webhooks w
    left join (
      select h.webhook_id,
             sum(h.succeeded)::bigint as succeeded, sum(h.failed)::bigint as failed,
             sum(h.retrying)::bigint as retrying, sum(h.pending)::bigint as pending,
             sum(h.cancelled)::bigint as cancelled
        from public.webhook_deliveries_per_hour(webhook_endpoint_stats.since) h
       group by h.webhook_id
    ) s on s.webhook_id = w.id
    -- The status of the newest delivery that was attempted, whenever that was.
    left join lateral (
      select d.last_status, d.last_attempt_at
        from public.webhook_deliveries d
       where d.webhook_id = w.id
         and d.last_attempt_at is not null
       order by d.created_at desc, d.id desc
       limit 1
    ) latest on true
   order by w.created_at, w.id
$$;
comment on function public.webhook_endpoint_stats(timestamptz) is
  'Per endpoint the caller can see: deliveries since then by outcome, success rate of the attempted ones, and the last HTTP status. Reads through RLS.';

revoke execute on function public.webhook_deliveries_per_hour(timestamptz, uuid),
                           public.webhook_endpoint_stats(timestamptz)
  from public, anon;
grant execute on function public.webhook_deliveries_per_hour(timestamptz, uuid),
                          public.webhook_endpoint_stats(timestamptz)
  to authenticated, service_role;

-- webhook_deliveries_per_hour left deleted endpoints out by their null webhook_id. Since
-- 20261130120000 a delete leaves the log's ids alone, so it leaves out the ids no endpoint
-- has (a semi-join on webhooks, read through the caller's RLS as before: an ADMIN sees
-- their company's endpoints, which are the only ones their deliveries name). Unchanged
-- otherwise (see 20261129130200 for the outcomes). Test: portal/delivery-stats.
create or replace function public.webhook_deliveries_per_hour(
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
       and d.webhook_id in (select w.id from public.webhooks w)
       and (for_webhook_id is null or d.webhook_id = for_webhook_id)
     group by 1, 2
     order by 1, 2;
end;
$$;

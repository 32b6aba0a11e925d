-- What dispatchers call: claim due deliveries under a lease, record a batch of attempt
-- results in one round trip, and give leases back on shutdown. Dispatchers connect with
-- the database URL Supabase gives functions (SUPABASE_DB_URL); service_role may call too.
--
-- The settings (batch size, lease, how long an endpoint may fail before it is disabled) are
-- the dispatcher's, parsed and checked where its configuration is read: these functions
-- take them as required arguments and only refuse values they cannot work with, so no
-- second default here can disagree with the dispatcher's.

create function private.claim_due_deliveries(
  worker text,
  batch_size integer,
  lease_seconds integer,
  per_webhook_limit integer default null
)
returns table (
  delivery_id      uuid,
  event_id         uuid,
  webhook_id       uuid,
  company_id       uuid,
  url              text,
  payload          jsonb,
  attempt_number   integer,
  secrets          text[],
  event_created_at timestamptz
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  if worker is null or btrim(worker) = '' then
    raise exception 'worker must name the dispatcher that claims the work' using errcode = '22023';
  end if;
  if batch_size is null or batch_size not between 1 and 1000 then
    raise exception 'batch_size must be between 1 and 1000, got %', batch_size using errcode = '22023';
  end if;
  if lease_seconds is null or lease_seconds not between 1 and 3600 then
    raise exception 'lease_seconds must be between 1 and 3600, got %', lease_seconds using errcode = '22023';
  end if;
  if per_webhook_limit is not null and per_webhook_limit < 1 then
    raise exception 'per_webhook_limit must be at least 1 (or null for no limit), got %', per_webhook_limit
      using errcode = '22023';
  end if;

  return query
  with recursive endpoints (webhook_id) as (
    -- Every endpoint with pending work, by a skip scan of the pending-by-endpoint index
    -- (one probe per endpoint), so an endpoint with one due delivery is seen even behind
    -- another endpoint's backlog of millions.
    (select d.webhook_id
       from public.webhook_deliveries d
      where d.state = 'pending' and d.webhook_id is not null
      order by d.webhook_id
      limit 1)
    union all
    select (select d.webhook_id
              from public.webhook_deliveries d
             where d.state = 'pending' and d.webhook_id > e.webhook_id
             order by d.webhook_id
             limit 1)
      from endpoints e
     where e.webhook_id is not null
  ), candidates as (
    -- Each endpoint's oldest due deliveries, ranked within the endpoint. The rank is
    -- computed after the per-endpoint LIMIT: a window function inside the lateral would
    -- read every delivery sharing the same next_attempt_at (a whole burst) first.
    select c.id, c.next_attempt_at,
           row_number() over (partition by c.webhook_id order by c.next_attempt_at, c.id) as rank
      from endpoints e
     cross join lateral (
           select d.id, d.webhook_id, d.next_attempt_at
             from public.webhook_deliveries d
            where d.webhook_id = e.webhook_id
              and d.state = 'pending'
              and d.next_attempt_at <= now()
            order by d.next_attempt_at
            limit coalesce(per_webhook_limit, batch_size)) c
     where e.webhook_id is not null
  ), picked as (
    -- Round-robin across endpoints (each one's oldest first), so a backlog for one
    -- endpoint cannot fill a batch while others wait; per_webhook_limit caps it hard.
    -- SKIP LOCKED lets concurrent dispatchers take disjoint sets without waiting (a
    -- candidate another claim holds is skipped; the next claim takes the rest).
    -- The chosen ids are locked by primary key only: joining on the due predicate again
    -- let a plan made for "about one due row" (the usual statistics of an outbox that is
    -- mostly delivered) scan every due row once per candidate, 0.5-1 s per claim under
    -- a backlog (bench/README.md).
    select d.id
      from public.webhook_deliveries d
     where d.id = any (array(
             select c.id
               from candidates c
              where per_webhook_limit is null or c.rank <= per_webhook_limit
              order by c.rank, c.next_attempt_at
              limit batch_size))
       and d.state = 'pending'
       and d.next_attempt_at <= now()
       for update of d skip locked
  ), claimed as (
    update public.webhook_deliveries d
       set attempt_count    = d.attempt_count + 1,
           lease_owner      = worker,
           lease_expires_at = now() + make_interval(secs => lease_seconds),
           -- An expired lease makes the delivery due again with no janitor.
           next_attempt_at  = now() + make_interval(secs => lease_seconds),
           last_attempt_at  = now()
      from picked
     where d.id = picked.id
    returning d.id, d.event_id, d.webhook_id, d.company_id, d.attempt_count
  )
  select c.id, c.event_id, c.webhook_id, c.company_id, w.url, ev.payload, c.attempt_count,
         private.webhook_signing_secrets(c.webhook_id), ev.created_at
    from claimed c
    join public.webhook_events ev on ev.id = c.event_id
    join public.webhooks w on w.id = c.webhook_id;
end;
$$;
comment on function private.claim_due_deliveries(text, integer, integer, integer) is
  'Leases up to batch_size due deliveries to worker for lease_seconds (FOR UPDATE SKIP LOCKED). attempt_number is the attempt about to be made.';

create function private.record_delivery_results(
  worker text,
  results jsonb,
  disable_after interval
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  applied integer;
  healthy uuid[];
  failing uuid[];
  gone uuid[];
begin
  if jsonb_typeof(results) is distinct from 'array' then
    raise exception 'results must be a JSON array of attempt results' using errcode = '22023';
  end if;

  -- Lock order: endpoints (in id order) before their deliveries, as disabling an endpoint
  -- does (webhooks row, then its cancel trigger on deliveries). The other order deadlocks.
  perform 1
     from public.webhooks w
    where w.id in (select d.webhook_id
                     from public.webhook_deliveries d
                    where d.id in (select (r ->> 'delivery_id')::uuid from jsonb_array_elements(results) r))
    order by w.id
      for no key update;

  -- Every attempt is logged, even one whose lease was lost meanwhile: it happened.
  insert into public.webhook_delivery_attempts
         (delivery_id, company_id, attempt_number, outcome, status, duration_ms, response_body, error, worker)
  select r.delivery_id, d.company_id, r.attempt_number, r.outcome, r.status, r.duration_ms,
         left(r.response_body, 4096), left(r.error, 2000), worker
    from jsonb_to_recordset(results) as r(delivery_id uuid, attempt_number integer, outcome public.webhook_attempt_outcome,
                                           status integer, duration_ms integer, response_body text,
                                           error text)
    join public.webhook_deliveries d on d.id = r.delivery_id;

  -- The delivery moves only if this worker still holds the lease for this attempt.
  with r as (
    select * from jsonb_to_recordset(results) as r(delivery_id uuid, attempt_number integer, outcome public.webhook_attempt_outcome,
                                                    status integer, error text, next_attempt_at timestamptz,
                                                    gone boolean)
  ), moved as (
    update public.webhook_deliveries d
       set state            = case when r.outcome = 'succeeded' then 'succeeded'::public.webhook_delivery_state
                                   when r.next_attempt_at is null then 'failed'
                                   else 'pending' end,
           next_attempt_at  = case when r.outcome <> 'succeeded' then r.next_attempt_at end,
           completed_at     = case when r.outcome = 'succeeded' or r.next_attempt_at is null then now() end,
           lease_owner      = null,
           lease_expires_at = null,
           last_status      = r.status,
           last_error       = left(r.error, 2000)
      from r
     where d.id = r.delivery_id
       and d.state = 'pending'
       and d.lease_owner = worker
       and d.attempt_count = r.attempt_number
    returning d.webhook_id, r.outcome, coalesce(r.gone, false) as gone
  )
  select count(*),
         array_agg(distinct webhook_id) filter (where outcome = 'succeeded'),
         array_agg(distinct webhook_id) filter (where outcome <> 'succeeded'),
         array_agg(distinct webhook_id) filter (where gone)
    into applied, healthy, failing, gone
    from moved;

  -- Endpoint health: a success ends a failing streak; 410 Gone disables at once; a
  -- streak longer than disable_after disables with a reason (pending work is cancelled
  -- by the webhooks trigger).
  update public.webhooks w set failing_since = null
   where w.id = any (healthy) and w.failing_since is not null;
  update public.webhooks w set failing_since = now()
   where w.id = any (failing) and w.failing_since is null and not w.id = any (coalesce(healthy, '{}'));
  update public.webhooks w
     set is_active = false,
         disabled_reason = 'the endpoint answered 410 Gone'
   where w.id = any (gone) and w.is_active;
  update public.webhooks w
     set is_active = false,
         disabled_reason = format('failing continuously since %s (longer than %s)', w.failing_since, disable_after)
   where w.id = any (failing) and w.is_active and w.failing_since < now() - disable_after;

  return applied;
end;
$$;
comment on function private.record_delivery_results(text, jsonb, interval) is
  'Records a batch of attempt results in one call: logs every attempt, closes or reschedules each delivery still leased to worker, and tracks endpoint health. Returns how many deliveries moved.';

create function private.release_deliveries(worker text, delivery_ids uuid[])
returns integer
language sql
volatile
security definer
set search_path = ''
as $$
  -- Graceful shutdown: the attempts never started, so they are not counted.
  with released as (
    update public.webhook_deliveries d
       set next_attempt_at  = now(),
           lease_owner      = null,
           lease_expires_at = null,
           attempt_count    = d.attempt_count - 1
     where d.id = any (delivery_ids)
       and d.state = 'pending'
       and d.lease_owner = worker
    returning 1
  )
  select count(*)::integer from released
$$;
comment on function private.release_deliveries(text, uuid[]) is
  'Gives leased deliveries back (due now) when a dispatcher stops before attempting them.';

revoke execute on function private.claim_due_deliveries(text, integer, integer, integer),
                           private.record_delivery_results(text, jsonb, interval),
                           private.release_deliveries(text, uuid[])
  from public;
grant execute on function private.claim_due_deliveries(text, integer, integer, integer),
                          private.record_delivery_results(text, jsonb, interval),
                          private.release_deliveries(text, uuid[])
  to service_role;

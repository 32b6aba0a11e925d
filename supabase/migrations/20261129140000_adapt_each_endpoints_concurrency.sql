-- Each endpoint earns its concurrency, between a start and the cap.
--
-- A slot stays busy in the database until its result is recorded: that is what makes the
-- cap hold across dispatchers. So one endpoint drains at about cap / (request + round
-- trip): with the cap at 10, about 1,650 deliveries/s here, and about 2,870/s at 50
-- (`npm run bench -- --sweep`). A cap of 50 for every endpoint would also let each dead
-- one hold 50 of a dispatcher's 500 sockets until its requests time out, so 10 dead
-- endpoints would fill a dispatcher where 50 did before. Instead, like TCP's congestion
-- window:
--   * an endpoint starts at endpoint_concurrency_start (10, every endpoint's cap until
--     now), and never goes below it (a cap set lower wins: that endpoint's concurrency is
--     flat, as before);
--   * each success adds one, up to endpoint_concurrency (now 50): a healthy endpoint
--     about doubles per round of requests and reaches the cap after three;
--   * a recorded batch with a sign of trouble for the endpoint (no answer, a timeout, a
--     5xx, or 429 Too Many Requests) halves it.
-- An endpoint that never answers stays at the start: dead endpoints cost what they did. One
-- that earned more and then hangs holds what it earned for one timeout, then halves.
-- The circuit breaker is unchanged (it still counts failures, not concurrency).
--
-- private.endpoint_concurrency is the one place that bounds it; claims take an endpoint up
-- to it, and endpoint_ready_at treats it as the endpoint's cap. An endpoint enabled again,
-- or given a new url, starts afresh (the end of this file).

alter table private.webhook_settings
  add column endpoint_concurrency_start integer not null default 10
    constraint webhook_settings_endpoint_concurrency_start_range check (endpoint_concurrency_start between 1 and 1000);
comment on column private.webhook_settings.endpoint_concurrency_start is
  'Requests in flight a new endpoint may have; it grows by one per success up to endpoint_concurrency, halves at a timeout, no answer, a 5xx or a 429, and never falls below this (a lower endpoint_concurrency wins).';

-- 10 was the default cap: a deployment still at 10 gets the new default; one that chose
-- its own cap keeps it.
alter table private.webhook_settings alter column endpoint_concurrency set default 50;
update private.webhook_settings set endpoint_concurrency = 50 where endpoint_concurrency = 10;
comment on column private.webhook_settings.endpoint_concurrency is
  'Most requests in flight per endpoint, across all dispatchers (leased deliveries): the cap an endpoint''s concurrency grows to (see endpoint_concurrency_start).';

alter table private.webhook_endpoints
  add column concurrency_limit integer
    constraint webhook_endpoints_concurrency_limit_range check (concurrency_limit between 1 and 1000);
alter table private.webhook_endpoints add column receiver_since timestamptz;
comment on column private.webhook_endpoints.receiver_since is
  'When the endpoint''s current url took effect (null: since it was created). Results of requests claimed before it were sent to the old url: they move their deliveries but say nothing about this receiver''s health or concurrency.';
grant select (concurrency_limit) on private.webhook_endpoints to authenticated;
comment on column private.webhook_endpoints.concurrency_limit is
  'Requests in flight the endpoint has earned: one more per success, halved at a sign of trouble, always within private.endpoint_concurrency''s bounds. Null: nothing recorded yet (the start).';

-- The requests in flight an endpoint that earned `earned` may have now: never below the
-- start, never above the cap (either may change at any time); null, nothing earned yet,
-- is the start. A definer, so that ADMINs' health view can show it without their reading
-- the settings row; it returns nothing but that number.
create function private.endpoint_concurrency(earned integer)
returns integer
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  settings private.webhook_settings;
begin
  select * into settings from private.webhook_settings;
  return least(settings.endpoint_concurrency,
               greatest(settings.endpoint_concurrency_start, coalesce(earned, settings.endpoint_concurrency_start)));
end;
$$;
revoke execute on function private.endpoint_concurrency(integer) from public;
grant execute on function private.endpoint_concurrency(integer) to authenticated;

-- ADMINs see it beside their endpoints' health: the view of the scheduling migration, plus
-- one column.
create or replace view public.webhook_endpoint_health
  with (security_invoker = true)
as
select e.webhook_id,
       e.company_id,
       case when not w.is_active then 'disabled'
            when e.circuit_opened_at is not null then 'circuit_open'
            when e.failing_since is not null then 'failing'
            else 'healthy'
       end as state,
       e.consecutive_failures,
       e.failing_since,
       e.circuit_opened_at,
       e.next_probe_at,
       e.last_status,
       e.last_error,
       e.last_attempt_at,
       e.last_success_at,
       private.endpoint_concurrency(e.concurrency_limit) as concurrency
  from private.webhook_endpoints e
  join public.webhooks w on w.id = e.webhook_id;
comment on column public.webhook_endpoint_health.concurrency is
  'Requests the endpoint may have in flight now: starts at the deployment''s start (10), one more per success up to its cap (50), halved at a timeout, no answer, a 5xx or a 429.';

-- When a claim should next look at an endpoint: as before, with the endpoint's
-- concurrency as its cap.
create or replace function private.endpoint_ready_at(endpoint private.webhook_endpoints, served boolean)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  cap integer := private.endpoint_concurrency(endpoint.concurrency_limit);
  in_flight integer;
  first_expiry timestamptz;
  earliest timestamptz;
begin
  select count(*)::integer, min(d.lease_expires_at) into in_flight, first_expiry
    from public.webhook_deliveries d
   where d.webhook_id = endpoint.webhook_id
     and d.state = 'pending'
     and d.lease_owner is not null
     and d.lease_expires_at > now();

  -- 'infinity' marks an ordered delivery held behind an earlier one of its key.
  select min(d.next_attempt_at) into earliest
    from public.webhook_deliveries d
   where d.webhook_id = endpoint.webhook_id
     and d.state = 'pending'
     and d.next_attempt_at < 'infinity';

  if earliest is null then
    return null;
  elsif endpoint.circuit_opened_at is not null then
    return case when in_flight > 0 then first_expiry else greatest(endpoint.next_probe_at, earliest) end;
  elsif in_flight >= cap then
    return first_expiry;
  elsif served and earliest <= now() then
    return now();
  else
    return earliest;
  end if;
end;
$$;
-- Claims take an endpoint up to its concurrency; otherwise as before.
create or replace function private.claim_due_deliveries(worker text, batch_size integer, lease_seconds integer)
returns setof private.claimed_delivery
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  candidates uuid[];
  picked uuid[];
  endpoint private.webhook_endpoints;
  hook public.webhooks;
  in_flight integer;
  take integer;
  due uuid[];
  heads uuid[];
  claimed uuid[] := '{}'::uuid[];
  served boolean;
  orphaned boolean;
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

  -- Endpoints to look at, longest waiting first: those whose ready_at has come, and those
  -- with new deliveries (signals). Only these are visited: endpoints waiting on a later
  -- retry, at their concurrency or with an open circuit cost nothing here.
  select array_agg(c.webhook_id order by c.since, c.webhook_id) into candidates
    from (select u.webhook_id, min(u.since) as since
            from ((select e.webhook_id, e.ready_at as since
                     from private.webhook_endpoints e
                    where e.ready_at <= now()
                    order by e.ready_at
                    limit batch_size)
                  union all
                  (select s.webhook_id, s.created_at
                     from private.webhook_endpoint_signals s
                    order by s.id
                    limit batch_size * 4)) u
           group by u.webhook_id
           order by min(u.since), u.webhook_id
           limit batch_size) c;
  if candidates is null then
    return;
  end if;

  -- Another claim holding an endpoint has it in hand: skip it rather than wait.
  select array_agg(e.webhook_id order by array_position(candidates, e.webhook_id)) into picked
    from (select e.webhook_id
            from private.webhook_endpoints e
           where e.webhook_id = any (candidates)
             for update skip locked) e;

  -- Everything the picked endpoints' signals announced is read from the deliveries below.
  -- A signal of an endpoint that no longer exists announced deliveries that a transaction
  -- committed while the endpoint was being deleted (the delete's cancel could not see
  -- them, and the foreign key then cleared their webhook_id): they end cancelled here.
  with gone as (
    delete from private.webhook_endpoint_signals s
     where s.webhook_id = any (candidates)
       and (s.webhook_id = any (coalesce(picked, '{}'))
            or not exists (select 1 from private.webhook_endpoints e where e.webhook_id = s.webhook_id))
    returning s.webhook_id
  )
  select bool_or(not g.webhook_id = any (coalesce(picked, '{}'))) into orphaned from gone g;
  if orphaned then
    update public.webhook_deliveries d
       set state = 'cancelled', next_attempt_at = null, completed_at = now(),
           lease_owner = null, lease_expires_at = null, last_error = 'endpoint deleted'
     where d.state = 'pending' and d.webhook_id is null;
  end if;
  if picked is null then
    return;
  end if;

  foreach endpoint.webhook_id in array picked loop
    select * into endpoint from private.webhook_endpoints e where e.webhook_id = endpoint.webhook_id;
    select * into hook from public.webhooks w where w.id = endpoint.webhook_id;
    served := false;

    if not hook.is_active then
      -- Disabled while a transaction was creating deliveries for it: they end here.
      perform private.cancel_pending_deliveries(hook.id, 'endpoint disabled: ' || coalesce(hook.disabled_reason, 'no reason given'));
      continue;
    end if;

    if cardinality(claimed) < batch_size then
      select count(*)::integer into in_flight
        from public.webhook_deliveries d
       where d.webhook_id = endpoint.webhook_id
         and d.state = 'pending'
         and d.lease_owner is not null
         and d.lease_expires_at > now();
      take := case
                when endpoint.circuit_opened_at is null then private.endpoint_concurrency(endpoint.concurrency_limit) - in_flight
                when endpoint.next_probe_at <= now() and in_flight = 0 then 1  -- the probe
                else 0
              end;
      take := least(take, batch_size - cardinality(claimed));

      while take > 0 loop
        -- The endpoint's oldest due deliveries. An ordered delivery goes only when it is
        -- the earliest pending one of its key and no other of its key is in flight (one
        -- with a later number whose transaction committed first); the others found due are
        -- parked ('infinity') until the one before them ends, so they are read once, not at
        -- every claim.
        due := array(select d.id
                       from public.webhook_deliveries d
                      where d.webhook_id = endpoint.webhook_id
                        and d.state = 'pending'
                        and d.next_attempt_at <= now()
                      order by d.next_attempt_at
                      limit take);
        exit when cardinality(due) = 0;
        heads := array(select d.id
                         from public.webhook_deliveries d
                        where d.id = any (due)
                          and (d.ordering_key is null
                               or (not exists (select 1
                                                 from public.webhook_deliveries p
                                                where p.webhook_id = d.webhook_id
                                                  and p.ordering_key = d.ordering_key
                                                  and p.state = 'pending'
                                                  and p.ordering_seq < d.ordering_seq)
                                   and not exists (select 1
                                                     from public.webhook_deliveries f
                                                    where f.webhook_id = d.webhook_id
                                                      and f.state = 'pending'
                                                      and f.lease_owner is not null
                                                      and f.lease_expires_at > now()
                                                      and f.ordering_key = d.ordering_key
                                                      and f.id <> d.id))));
        if cardinality(heads) < cardinality(due) then
          update public.webhook_deliveries d
             set next_attempt_at = 'infinity'
           where d.id = any (due) and not d.id = any (heads);
        end if;

        -- SKIP LOCKED: a row someone else holds (an ADMIN cancelling it) is left for later.
        with picked_rows as (
          select d.id
            from public.webhook_deliveries d
           where d.id = any (heads)
             and d.state = 'pending'
             and d.next_attempt_at <= now()
             for update of d skip locked
        ), leased as (
          update public.webhook_deliveries d
             set attempt_count    = d.attempt_count + 1,
                 lease_owner      = worker,
                 lease_expires_at = now() + make_interval(secs => lease_seconds),
                 -- An expired lease makes the delivery due again with no janitor.
                 next_attempt_at  = now() + make_interval(secs => lease_seconds),
                 last_attempt_at  = now()
            from picked_rows
           where d.id = picked_rows.id
          returning d.id
        )
        select claimed || coalesce(array_agg(leased.id), '{}') into claimed from leased;

        served := served or cardinality(heads) > 0;
        take := least(take - cardinality(heads), batch_size - cardinality(claimed));
        -- Fewer due rows than asked for: nothing more is due now.
        exit when cardinality(due) < take + cardinality(heads);
      end loop;
    end if;

    update private.webhook_endpoints e
       set ready_at = private.endpoint_ready_at(e, served)
     where e.webhook_id = endpoint.webhook_id;
  end loop;

  -- Found work: this dispatcher will claim again soon, so committing transactions need
  -- not wake anyone. A claim that finds nothing says nothing (its dispatcher may be
  -- about to sleep).
  if cardinality(claimed) > 0 then
    perform private.note_dispatcher_awake();
  end if;

  return query
  select d.id, d.event_id, d.webhook_id, d.company_id, w.url, ev.payload, d.attempt_count,
         private.webhook_signing_secrets(d.webhook_id), ev.created_at
    from public.webhook_deliveries d
    join public.webhook_events ev on ev.id = d.event_id
    join public.webhooks w on w.id = d.webhook_id
   where d.id = any (claimed);
end;
$$;
-- Recording also adapts each endpoint's concurrency; otherwise as before.
create or replace function private.record_delivery_results(worker text, results jsonb, disable_after interval)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  settings private.webhook_settings;
  ids uuid[];
  moved jsonb;
  applied integer;
begin
  if jsonb_typeof(results) is distinct from 'array' then
    raise exception 'results must be a JSON array of attempt results' using errcode = '22023';
  end if;
  if disable_after is null or disable_after <= interval '0' then
    raise exception 'disable_after must be a positive interval, got %', coalesce(disable_after::text, 'null')
      using errcode = '22023';
  end if;
  select * into settings from private.webhook_settings;
  -- The deliveries are reached by primary key (= any): joined to the results as a set,
  -- a small outbox's statistics made the planner scan the whole table on every call.
  ids := array(select (r ->> 'delivery_id')::uuid from jsonb_array_elements(results) r);

  -- Lock order: the endpoints' rows (in id order), then their deliveries; as claims,
  -- releases and cancels do. Never the webhooks rows: those are the ADMINs'.
  perform 1
     from private.webhook_endpoints e
    where e.webhook_id in (select d.webhook_id
                             from public.webhook_deliveries d
                            where d.id = any (ids))
    order by e.webhook_id
      for update;

  -- Every attempt is logged, even one whose lease was lost meanwhile: it happened.
  insert into public.webhook_delivery_attempts
         (delivery_id, company_id, attempt_number, outcome, status, duration_ms, response_body, error, worker)
  select r.delivery_id, d.company_id, r.attempt_number, r.outcome, r.status, r.duration_ms,
         left(r.response_body, 4096), left(r.error, 2000), worker
    from jsonb_to_recordset(results) as r(delivery_id uuid, attempt_number integer, outcome public.webhook_attempt_outcome,
                                           status integer, duration_ms integer, response_body text,
                                           error text)
    join public.webhook_deliveries d on d.id = r.delivery_id
   where d.id = any (ids);

  -- The delivery moves only if this worker still holds the lease for this attempt.
  with r as (
    select *
      from rows from (jsonb_to_recordset(results)
                        as (delivery_id uuid, attempt_number integer, outcome public.webhook_attempt_outcome, status integer, error text,
                            next_attempt_at timestamptz, gone boolean))
           with ordinality as r(delivery_id, attempt_number, outcome, status, error, next_attempt_at, gone, position)
  ), moved_rows as (
    update public.webhook_deliveries d
       set state            = case when r.outcome = 'succeeded' then 'succeeded'::public.webhook_delivery_state
                                   when r.next_attempt_at is null then 'failed'::public.webhook_delivery_state
                                   else 'pending'::public.webhook_delivery_state end,
           next_attempt_at  = case when r.outcome <> 'succeeded' then r.next_attempt_at end,
           completed_at     = case when r.outcome = 'succeeded' or r.next_attempt_at is null then now() end,
           lease_owner      = null,
           lease_expires_at = null,
           last_status      = r.status,
           last_error       = left(r.error, 2000)
      from r
     where d.id = r.delivery_id
       and d.id = any (ids)
       and d.state = 'pending'
       and d.lease_owner = worker
       and d.attempt_count = r.attempt_number
    returning d.webhook_id, d.ordering_key, d.state, r.outcome, r.status, left(r.error, 2000) as error,
              coalesce(r.gone, false) as gone, r.position, d.last_attempt_at as claimed_at
  )
  select count(*)::integer, coalesce(jsonb_agg(to_jsonb(m) order by m.position), '[]')
    into applied, moved
    from moved_rows m;

  -- Ordered keys whose delivery ended: the next one of the key goes next.
  if moved @? '$[*] ? (@.ordering_key != null && @.state != "pending")' then
  update public.webhook_deliveries d
     set next_attempt_at = now()
   where d.id in (select distinct on (n.webhook_id, n.ordering_key) n.id
                    from public.webhook_deliveries n
                    join (select distinct (m ->> 'webhook_id')::uuid as webhook_id, m ->> 'ordering_key' as ordering_key
                            from jsonb_array_elements(moved) m
                           where m ->> 'ordering_key' is not null
                             and m ->> 'state' <> 'pending') ended
                      on n.webhook_id = ended.webhook_id and n.ordering_key = ended.ordering_key
                   where n.state = 'pending'
                   order by n.webhook_id, n.ordering_key, n.ordering_seq)
     and d.next_attempt_at = 'infinity';
  end if;

  -- Endpoint health (from the requests made to its current url). A success closes everything; so does any answer that is not a 5xx
  -- (the endpoint is up, it just refused). No answer, a timeout or a 5xx extends the run
  -- of consecutive failures; at the threshold the circuit opens, and each failed probe
  -- doubles the wait before the next one (up to the maximum). The endpoint's concurrency
  -- grows by one per success and halves at a sign of trouble (see the top of this file).
  with per_endpoint as (
    select (m ->> 'webhook_id')::uuid as webhook_id,
           bool_or(m ->> 'outcome' = 'succeeded') as succeeded,
           count(*) filter (where m ->> 'outcome' = 'failed'
                              and coalesce((m ->> 'status')::integer, 599) >= 500)::integer as breaking,
           bool_or(m ->> 'outcome' = 'failed' and (m ->> 'status')::integer < 500) as answered,
           bool_or(m ->> 'outcome' <> 'succeeded') as any_failure,
           count(*) filter (where m ->> 'outcome' = 'succeeded')::integer as successes,
           -- No answer, a timeout, a 5xx, or 429 Too Many Requests: fewer at once.
           bool_or(m ->> 'outcome' = 'failed'
                   and (coalesce((m ->> 'status')::integer, 599) >= 500 or (m ->> 'status')::integer = 429)) as slow_down,
           (array_agg(m ->> 'status' order by (m ->> 'position')::bigint desc))[1]::integer as last_status,
           (array_agg(m ->> 'error' order by (m ->> 'position')::bigint desc))[1] as last_error,
           max((m ->> 'claimed_at')::timestamptz) filter (where m ->> 'outcome' = 'failed'
                                                            and coalesce((m ->> 'status')::integer, 599) >= 500) as last_breaking_claim
      from jsonb_array_elements(moved) m
      -- Only requests claimed since the endpoint's current url took effect speak for it.
      join private.webhook_endpoints r on r.webhook_id = (m ->> 'webhook_id')::uuid
     where r.receiver_since is null or (m ->> 'claimed_at')::timestamptz >= r.receiver_since
     group by 1
  ), counted as (
    select p.*,
           case when p.succeeded or (p.answered and p.breaking = 0) then 0
                else e.consecutive_failures + p.breaking end as failures,
           -- A probe is a request claimed while the circuit was open; the ones already in
           -- flight when it opened are not, and their failures must not push the next probe.
           coalesce(p.last_breaking_claim > e.circuit_opened_at, false) as probe_failed
      from per_endpoint p
      join private.webhook_endpoints e on e.webhook_id = p.webhook_id
  )
  update private.webhook_endpoints e
     set consecutive_failures   = c.failures,
         failing_since          = case when c.succeeded then null
                                       when c.any_failure then coalesce(e.failing_since, now())
                                       else e.failing_since end,
         circuit_opened_at      = case when c.failures = 0 then null
                                       when e.circuit_opened_at is null and c.failures >= settings.circuit_failure_threshold then now()
                                       else e.circuit_opened_at end,
         probe_interval_seconds = case when c.failures = 0 then null
                                       when e.circuit_opened_at is null and c.failures >= settings.circuit_failure_threshold
                                         then settings.circuit_probe_min_seconds
                                       when c.probe_failed
                                         then least(e.probe_interval_seconds * 2, settings.circuit_probe_max_seconds)
                                       else e.probe_interval_seconds end,
         next_probe_at          = case when c.failures = 0 then null
                                       when e.circuit_opened_at is null and c.failures >= settings.circuit_failure_threshold
                                         then now() + make_interval(secs => settings.circuit_probe_min_seconds)
                                       when c.probe_failed
                                         then now() + make_interval(secs => least(e.probe_interval_seconds * 2, settings.circuit_probe_max_seconds))
                                       else e.next_probe_at end,
         last_status            = c.last_status,
         last_error             = case when c.succeeded then null else c.last_error end,
         last_attempt_at        = now(),
         last_success_at        = case when c.succeeded then now() else e.last_success_at end,
         concurrency_limit      = private.endpoint_concurrency(
                                    case when c.slow_down then private.endpoint_concurrency(e.concurrency_limit) / 2
                                         else private.endpoint_concurrency(e.concurrency_limit) + c.successes end)
    from counted c
   where e.webhook_id = c.webhook_id;

  -- Freed slots (and promoted keys) make the endpoints ready again.
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, false)
   where e.webhook_id in (select distinct (m ->> 'webhook_id')::uuid from jsonb_array_elements(moved) m);

  -- 410 Gone disables at once; failing longer than disable_after disables with a reason
  -- (pending work is cancelled by the webhooks trigger). The only write the dispatcher
  -- makes to a webhooks row; a row an ADMIN holds is left for the next failure.
  if moved @? '$[*] ? (@.outcome != "succeeded")' then
  update public.webhooks w
     set is_active = false,
         disabled_reason = case when f.gone then 'the endpoint answered 410 Gone'
                                else format('failing continuously since %s (longer than %s)', f.failing_since, disable_after) end
    from (select e.webhook_id, e.failing_since,
                 exists (select 1 from jsonb_array_elements(moved) m
                          where (m ->> 'webhook_id')::uuid = e.webhook_id and (m ->> 'gone')::boolean
                            and (e.receiver_since is null or (m ->> 'claimed_at')::timestamptz >= e.receiver_since)) as gone
            from private.webhook_endpoints e
           where e.webhook_id in (select distinct (m ->> 'webhook_id')::uuid from jsonb_array_elements(moved) m)) f
   where w.id = f.webhook_id
     and (f.gone or f.failing_since < now() - disable_after)
     and w.id in (select l.id from public.webhooks l where l.id = f.webhook_id and l.is_active
                     for no key update skip locked);
  end if;

  return applied;
end;
$$;
-- What an endpoint earned belongs to the receiver that earned it. Enabling an endpoint again
-- starts it afresh, now its concurrency too; otherwise the trigger function of the
-- scheduling migration.
create or replace function private.tg_webhooks__cancel_pending_deliveries()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    -- When the whole company is being deleted its deliveries go with it (cascade);
    -- updating them here would trip the company foreign key.
    if exists (select 1 from public.companies c where c.id = old.company_id) then
      perform 1 from private.webhook_endpoints e where e.webhook_id = old.id for update;
      perform private.cancel_pending_deliveries(old.id, 'endpoint deleted');
    end if;
    return old;
  end if;
  if old.is_active and not new.is_active then
    perform 1 from private.webhook_endpoints e where e.webhook_id = new.id for update;
    perform private.cancel_pending_deliveries(new.id, 'endpoint disabled: ' || coalesce(new.disabled_reason, 'no reason given'));
  elsif new.is_active and not old.is_active then
    -- Enabled again: a fresh start, as the ADMIN expects.
    update private.webhook_endpoints e
       set consecutive_failures = 0, failing_since = null,
           circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null,
           concurrency_limit = null
     where e.webhook_id = new.id;
  end if;
  return null;
end;
$$;

-- Waking a dispatcher when none is awake, in one place: new deliveries, deliveries an
-- ordered key releases, and a url change (below) all need it.
create function private.wake_dispatchers_if_none_awake()
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not private.dispatcher_is_awake() then
    -- NOTIFY is delivered at commit and deduplicated within a transaction; wake_dispatcher
    -- calls pg_net at most once per transaction (and per wakeup_interval_ms).
    perform pg_notify('webhook_deliveries', '');
    perform private.wake_dispatcher();
  end if;
end;
$$;
revoke execute on function private.wake_dispatchers_if_none_awake() from public;

-- The two triggers that had that block inline; otherwise as in the scheduling and
-- released-deliveries migrations.
create or replace function private.tg_webhook_deliveries__wake_dispatchers()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.webhook_endpoint_signals (webhook_id)
  select distinct i.webhook_id from inserted i where i.webhook_id is not null;
  if found then
    perform private.wake_dispatchers_if_none_awake();
  end if;
  return null;
end;
$$;

create or replace function private.tg_webhook_deliveries__wake_when_released()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.wake_dispatchers_if_none_awake();
  return null;
end;
$$;

-- A new url is a new receiver: the same fresh start (health, circuit, concurrency, and no
-- last attempt yet), and the endpoint's pending deliveries are due again by their own
-- times, not held for a probe of the old receiver; a dispatcher is woken for them if none
-- is awake, as for deliveries an ordered key releases. Requests to the old url still in
-- flight are recorded as usual but no longer speak for the endpoint's health
-- (receiver_since: their failures count nothing, their 410 disables nothing). Lock order
-- as everywhere: the endpoint's row, then its deliveries.
create function private.tg_webhooks__fresh_start_on_new_url()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  due_at timestamptz;
begin
  update private.webhook_endpoints e
     set consecutive_failures = 0, failing_since = null,
         circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null,
         concurrency_limit = null,
         last_status = null, last_error = null, last_attempt_at = null, last_success_at = null,
         receiver_since = now()
   where e.webhook_id = new.id;
  -- A second statement: endpoint_ready_at must see the circuit the first one closed.
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, false)
   where e.webhook_id = new.id
  returning e.ready_at into due_at;
  if due_at <= now() then
    perform private.wake_dispatchers_if_none_awake();
  end if;
  return null;
end;
$$;
revoke execute on function private.tg_webhooks__fresh_start_on_new_url() from public;

create trigger fresh_start_on_new_url
  after update of url on public.webhooks
  for each row
  when (old.url is distinct from new.url)
  execute function private.tg_webhooks__fresh_start_on_new_url();

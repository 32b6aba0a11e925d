-- ADMINs cap their own endpoint's requests in flight: public.webhooks.max_concurrent_requests.
--
-- Until now every endpoint could reach the deployment's cap (webhook_settings.
-- endpoint_concurrency, 50 by default). A company whose ERP takes at most 5 requests at
-- once had no way to say so: its endpoint answered 503s and timeouts under a burst, its
-- concurrency halved, grew back, and failed again, with attempts spent each time. Now an
-- ADMIN sets max_concurrent_requests on the endpoint (1 to 1000; null, the default: the
-- deployment's cap). It holds across every dispatcher, as the deployment's cap does:
-- private.endpoint_concurrency, the one home of the rule, now takes the endpoint's own cap
-- as a second argument, and a lower one wins over everything (the start included):
--   least(deployment cap, endpoint's cap, greatest(start, what it has earned)).
-- So the deployment's cap still bounds an endpoint that asks for more.
--
-- The value is copied to private.webhook_endpoints, where the claim, the record and
-- endpoint_ready_at read the endpoint (the dispatcher's hot path does not read the webhooks
-- rows ADMINs edit for it): on insert by tg_webhooks__track_endpoint, on update by
-- tg_webhooks__apply_endpoint_changes, which holds the endpoint's row (in id order, as
-- before) and computes its schedule again, waking a dispatcher when a raised cap makes it
-- due. The earned concurrency a record stores never exceeds the endpoint's cap.
--
-- Redefined whole, only their calls of endpoint_concurrency changed: the claim (as
-- 20261130170000), the record (as 20261130190000), endpoint_ready_at (as 20261129140000),
-- the ADMINs' health view (its `concurrency` column is the endpoint's effective cap), and
-- the update trigger (as 20261130140000, plus the copy). The one-argument
-- endpoint_concurrency is dropped.
-- Tests: supabase/tests/scheduling/endpoint-own-cap.test.sql; across two dispatchers,
-- tests/outbox/endpoint-cap-across-claimers.test.ts.

alter table public.webhooks
  add column max_concurrent_requests integer,
  add constraint webhooks_max_concurrent_requests_range
    check (max_concurrent_requests between 1 and 1000);
comment on column public.webhooks.max_concurrent_requests is
  'Most requests this endpoint may have in flight at once, across all dispatchers (1-1000). Null: the deployment''s cap (private.webhook_settings.endpoint_concurrency), which also bounds a higher value.';
comment on constraint webhooks_max_concurrent_requests_range on public.webhooks is
  'max_concurrent_requests must be between 1 and 1000, or null for the deployment''s cap';
grant insert (max_concurrent_requests), update (max_concurrent_requests) on public.webhooks to authenticated;

alter table private.webhook_endpoints add column max_concurrent_requests integer;
comment on column private.webhook_endpoints.max_concurrent_requests is
  'A copy of public.webhooks.max_concurrent_requests (kept by the webhooks triggers), where claims and records read it.';
update private.webhook_endpoints e
   set max_concurrent_requests = w.max_concurrent_requests
  from public.webhooks w
 where w.id = e.webhook_id and w.max_concurrent_requests is not null;

-- The one home of the rule. A definer, so that ADMINs' health view can show it without
-- their reading the settings row; it returns nothing but that number.
create function private.endpoint_concurrency(earned integer, ceiling integer)
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
               ceiling,  -- least() ignores a null: no cap of the endpoint's own
               greatest(settings.endpoint_concurrency_start, coalesce(earned, settings.endpoint_concurrency_start)));
end;
$$;
comment on function private.endpoint_concurrency(integer, integer) is
  'Requests an endpoint may have in flight: what it has earned (null: the start), never below endpoint_concurrency_start, never above the deployment''s cap nor the endpoint''s own (ceiling, null: none).';
revoke execute on function private.endpoint_concurrency(integer, integer) from public;
grant execute on function private.endpoint_concurrency(integer, integer) to authenticated;

create or replace function private.tg_webhooks__track_endpoint()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.webhook_endpoints (webhook_id, company_id, max_concurrent_requests)
  values (new.id, new.company_id, new.max_concurrent_requests);
  return null;
end;
$$;

create or replace function private.endpoint_ready_at(endpoint private.webhook_endpoints, served boolean)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  cap integer := private.endpoint_concurrency(endpoint.concurrency_limit, endpoint.max_concurrent_requests);
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

create or replace function private.claim_due_deliveries(worker text, batch_size integer, lease_seconds integer)
returns setof private.claimed_delivery
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = 'force_generic_plan'
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
  claimed integer := 0;  -- leased, and returned, so far
  secrets text[];
  served boolean;
  leased_now integer;
  seqscan_was text;
  orphans uuid[];
  cancellation private.webhook_cancellations;
  chunk integer;
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

  -- One cancellation left unfinished by a disable or delete (see the top of
  -- 20261130140000): a chunk of the oldest one this claim can take, of the three oldest.
  -- Never waits. Lock order: the endpoint's row (if it still exists), then the
  -- cancellation's, then the deliveries, each SKIP LOCKED here; a disable or delete holds
  -- the endpoint's row before it writes a cancellation, so nobody holds a cancellation row
  -- while waiting for its endpoint.
  for cancellation in
    select * from private.webhook_cancellations c order by c.requested_at, c.webhook_id limit 3
  loop
    perform 1 from private.webhook_endpoints e where e.webhook_id = cancellation.webhook_id for update skip locked;
    continue when not found
              and exists (select 1 from private.webhook_endpoints e where e.webhook_id = cancellation.webhook_id);
    select * into cancellation
      from private.webhook_cancellations c
     where c.webhook_id = cancellation.webhook_id
       for update skip locked;
    continue when not found;  -- another claim has it, or it has just ended
    chunk := (select s.cancel_batch_size from private.webhook_settings s);
    -- Two statements: the check must see what the cancel did.
    chunk := chunk - private.cancel_deliveries_through(cancellation.webhook_id, cancellation.reason,
                                                       cancellation.through, chunk, true);
    -- Ended once nothing pending is left under it. A deleted endpoint's ends only once its
    -- signals are gone too: a claim that meets one of those inserts the cancellation again,
    -- and must never find its row being deleted by a claim still in progress (it would
    -- wait for it). An endpoint that still exists gets its schedule back.
    if chunk > 0
       and not exists (select 1 from public.webhook_deliveries d
                        where d.webhook_id = cancellation.webhook_id and d.state = 'pending'
                          and d.created_at < cancellation.through
                        order by d.next_attempt_at
                        limit 1)
       and (exists (select 1 from private.webhook_endpoints e where e.webhook_id = cancellation.webhook_id)
            or not exists (select 1 from private.webhook_endpoint_signals s where s.webhook_id = cancellation.webhook_id)) then
      delete from private.webhook_cancellations c where c.webhook_id = cancellation.webhook_id;
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = cancellation.webhook_id;
    end if;
    exit;
  end loop;

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
  -- committed after the delete's cancel: they end cancelled, by a cancellation as the
  -- delete's own (so a chunk per claim, however many). Their webhook_id names the deleted
  -- endpoint (since 20261130120000 a delete leaves its log alone; before, the foreign key
  -- cleared it to null: a chunk of those too). The writes and the ADMIN RPCs lock the
  -- endpoints they create deliveries for, so this is a last line, not a path anything
  -- takes by design.
  orphans := private.consume_endpoint_signals(candidates, coalesce(picked, '{}'));
  if orphans is not null then
    -- 'infinity': everything pending of an endpoint that no longer exists. A cancellation
    -- already there for it is the delete's, which says 'infinity' too. In id order, so
    -- that two claims inserting the same ones never wait on each other crosswise.
    insert into private.webhook_cancellations (webhook_id, reason, through)
    select o.webhook_id, 'endpoint deleted', 'infinity' from unnest(orphans) o(webhook_id) order by o.webhook_id
    on conflict on constraint webhook_cancellations_pkey do nothing;
    update public.webhook_deliveries d
       set state = 'cancelled', next_attempt_at = null, completed_at = now(),
           lease_owner = null, lease_expires_at = null, last_error = 'endpoint deleted'
     where d.id in (select p.id
                      from public.webhook_deliveries p
                     where p.webhook_id is null and p.state = 'pending'
                     limit (select s.cancel_batch_size from private.webhook_settings s)
                       for update skip locked);
  end if;
  if picked is null then
    return;
  end if;

  foreach endpoint.webhook_id in array picked loop
    select * into endpoint from private.webhook_endpoints e where e.webhook_id = endpoint.webhook_id;
    select * into hook from public.webhooks w where w.id = endpoint.webhook_id;
    served := false;
    secrets := null;

    if not hook.is_active then
      -- Disabled while a transaction was creating deliveries for it: they end here.
      perform private.cancel_pending_deliveries(hook.id, 'endpoint disabled: ' || coalesce(hook.disabled_reason, 'no reason given'));
      continue;
    end if;

    -- Enabled again before the cancellation its disable left had ended: what that disable
    -- cancels must not go out, and what came since waits behind it (an ordered key's order).
    if claimed < batch_size
       and not exists (select 1 from private.webhook_cancellations c where c.webhook_id = endpoint.webhook_id) then
      select count(*)::integer into in_flight
        from public.webhook_deliveries d
       where d.webhook_id = endpoint.webhook_id
         and d.state = 'pending'
         and d.lease_owner is not null
         and d.lease_expires_at > now();
      take := case
                when endpoint.circuit_opened_at is null then private.endpoint_concurrency(endpoint.concurrency_limit, endpoint.max_concurrent_requests) - in_flight
                when endpoint.next_probe_at <= now() and in_flight = 0 then 1  -- the probe
                else 0
              end;
      take := least(take, batch_size - claimed);

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

        secrets := coalesce(secrets, private.webhook_signing_secrets(endpoint.webhook_id));
        -- By keys only, whatever the statistics when it is planned (see the top).
        seqscan_was := pg_catalog.current_setting('enable_seqscan');
        perform pg_catalog.set_config('enable_seqscan', 'off', true);
        -- SKIP LOCKED: a row someone else holds (an ADMIN cancelling it) is left for later.
        return query
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
          returning d.id, d.event_id, d.company_id, d.attempt_count
        )
        -- Returned as they are leased: the claim reads no delivery a second time, and
        -- each event by its id.
        select l.id, l.event_id, endpoint.webhook_id, l.company_id, hook.url, ev.payload,
               l.attempt_count, secrets, ev.created_at
          from leased l
         cross join lateral (select e.payload, e.created_at
                               from public.webhook_events e
                              where e.id = l.event_id
                              limit 1) ev;
        get diagnostics leased_now = row_count;
        perform pg_catalog.set_config('enable_seqscan', seqscan_was, true);
        claimed := claimed + leased_now;

        served := served or cardinality(heads) > 0;
        take := least(take - cardinality(heads), batch_size - claimed);
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
  if claimed > 0 then
    perform private.note_dispatcher_awake();
  end if;
end;
$$;

create or replace function private.record_delivery_results(worker text, results jsonb, disable_after interval)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
  settings private.webhook_settings;
  ids uuid[];
  moved jsonb;
  applied integer;
  seqscan_was text;
begin
  if worker is null or btrim(worker) = '' then
    raise exception 'worker must name the dispatcher that holds the leases' using errcode = '22023';
  end if;
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

  -- The next two statements reach every delivery by its key, whatever the statistics
  -- when they are planned (see the top of 20261130190000).
  seqscan_was := pg_catalog.current_setting('enable_seqscan');
  perform pg_catalog.set_config('enable_seqscan', 'off', true);

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
  perform pg_catalog.set_config('enable_seqscan', seqscan_was, true);

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
  -- grows by one per success while its window is full, and halves at a sign of trouble
  -- (see the top of this file and of 20261129140000).
  with held as (
    -- What this record moved per endpoint: the slots those requests held until now.
    select (m ->> 'webhook_id')::uuid as webhook_id, count(*) as slots
      from jsonb_array_elements(moved) m
     group by 1
  ), per_endpoint as (
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
           coalesce(p.last_breaking_claim > e.circuit_opened_at, false) as probe_failed,
           -- Its window was full: what it still has in flight, plus what this record moved
           -- (those held slots until now), reached what it may have.
           h.slots
             + (select count(*)
                  from public.webhook_deliveries d
                 where d.webhook_id = p.webhook_id
                   and d.state = 'pending'
                   and d.lease_owner is not null
                   and d.lease_expires_at > now())
             >= private.endpoint_concurrency(e.concurrency_limit, e.max_concurrent_requests) as window_full
      from per_endpoint p
      join private.webhook_endpoints e on e.webhook_id = p.webhook_id
      join held h on h.webhook_id = p.webhook_id
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
                                    case when c.slow_down then private.endpoint_concurrency(e.concurrency_limit, e.max_concurrent_requests) / 2
                                         when c.window_full then private.endpoint_concurrency(e.concurrency_limit, e.max_concurrent_requests) + c.successes
                                         else private.endpoint_concurrency(e.concurrency_limit, e.max_concurrent_requests) end,
                                    e.max_concurrent_requests)
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

create or replace function private.tg_webhooks__apply_endpoint_changes()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  change record;
  due_at timestamptz;
begin
  -- In id order: each endpoint's lock is taken at the top of its turn, so the statement
  -- takes them in increasing id order, as records do, whatever order it updated the rows in.
  for change in
    select n.id, n.disabled_reason,
           o.is_active as was_active, n.is_active,
           o.url is distinct from n.url as new_url,
           o.delivery_order as old_order, n.delivery_order,
           o.max_concurrent_requests is distinct from n.max_concurrent_requests as new_cap,
           n.max_concurrent_requests
      from new_rows n
      join old_rows o on o.id = n.id
     where (o.is_active, o.url, o.delivery_order, o.max_concurrent_requests)
           is distinct from (n.is_active, n.url, n.delivery_order, n.max_concurrent_requests)
     order by n.id
  loop
    perform 1 from private.webhook_endpoints e where e.webhook_id = change.id for update;

    -- The ADMIN's own cap, copied to where claims and records read it (first, so that what
    -- follows sees it). Lowered: the requests in flight above it finish, and no claim takes
    -- more until they have. Raised or removed: the endpoint may take more now.
    if change.new_cap then
      update private.webhook_endpoints e
         set max_concurrent_requests = change.max_concurrent_requests
       where e.webhook_id = change.id;
      -- A second statement: endpoint_ready_at must see the new cap.
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id
      returning e.ready_at into due_at;
      if due_at <= now() then
        perform private.wake_dispatchers_if_none_awake();
      end if;
    end if;

    -- Switching to parallel releases what was held for order; switching to ordered applies
    -- to the deliveries created from then on (20261129110000).
    if change.old_order = 'ordered' and change.delivery_order = 'parallel' then
      update public.webhook_deliveries d
         set ordering_key = null,
             ordering_seq = null,
             next_attempt_at = case when d.next_attempt_at = 'infinity' then now() else d.next_attempt_at end
       where d.webhook_id = change.id
         and d.state = 'pending'
         and d.ordering_key is not null;
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id;
    end if;

    -- Disabled: its pending deliveries end cancelled. Enabled again: a fresh start, its
    -- concurrency too, as the ADMIN expects (20261129140000).
    if change.was_active and not change.is_active then
      perform private.cancel_pending_deliveries(change.id, 'endpoint disabled: ' || coalesce(change.disabled_reason, 'no reason given'));
    elsif change.is_active and not change.was_active then
      -- Enabled again before the claims finished cancelling what the disable left: they
      -- cancel what was created before now, and the endpoint sends nothing until they have.
      -- (Created before this transaction began: deliveries a write made meanwhile are not
      -- the disable's.) Its schedule, which the disable cleared, is computed again: a write
      -- may have fanned out to it between the disable's cancel and now.
      update private.webhook_cancellations c
         set through = now()
       where c.webhook_id = change.id
         and c.through = 'infinity';
      update private.webhook_endpoints e
         set consecutive_failures = 0, failing_since = null,
             circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null,
             concurrency_limit = null
       where e.webhook_id = change.id;
      -- A second statement: endpoint_ready_at must see the circuit the first one closed.
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id
      returning e.ready_at into due_at;
      if due_at <= now() then
        perform private.wake_dispatchers_if_none_awake();
      end if;
    end if;

    -- A new url is a new receiver: the same fresh start (health, circuit, concurrency, no
    -- last attempt), its pending deliveries due again by their own times, a dispatcher woken
    -- for them if none is awake; requests to the old url still in flight no longer speak for
    -- its health (receiver_since; 20261129140000).
    if change.new_url then
      update private.webhook_endpoints e
         set consecutive_failures = 0, failing_since = null,
             circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null,
             concurrency_limit = null,
             last_status = null, last_error = null, last_attempt_at = null, last_success_at = null,
             receiver_since = now()
       where e.webhook_id = change.id;
      -- A second statement: endpoint_ready_at must see the circuit the first one closed.
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id
      returning e.ready_at into due_at;
      if due_at <= now() then
        perform private.wake_dispatchers_if_none_awake();
      end if;
    end if;
  end loop;
  return null;
end;
$$;

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
       private.endpoint_concurrency(e.concurrency_limit, w.max_concurrent_requests) as concurrency
  from private.webhook_endpoints e
  join public.webhooks w on w.id = e.webhook_id;
comment on column public.webhook_endpoint_health.concurrency is
  'Requests the endpoint may have in flight now: starts at the deployment''s start (10), one more per success while all of them are in use, up to its cap (the deployment''s, 50, or the endpoint''s own max_concurrent_requests if lower); halved at a timeout, no answer, a 5xx or a 429.';

drop function private.endpoint_concurrency(integer);

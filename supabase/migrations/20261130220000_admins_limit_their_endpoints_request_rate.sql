-- ADMINs limit their own endpoint's request rate: public.webhooks.max_requests_per_second.
--
-- 20261130200000 let an ADMIN cap the requests in flight to their endpoint. A receiver
-- that answers fast can still be flooded: at 10 requests in flight and 5 ms each, 2,000
-- requests a second. Many integrators sit behind an API with a rate limit (an ERP's 20
-- requests a second); past it they answer 429, the endpoint's concurrency halves, and
-- attempts are spent on requests that had no chance. Now an ADMIN sets
-- max_requests_per_second (1-10,000; null, the default: no limit of its own).
--
-- A token bucket per endpoint, in the database like everything the claims count, so it
-- holds across every dispatcher: it holds one second of requests (the rate), refills
-- continuously, and a claim takes no more of the endpoint's deliveries than it holds
-- (private.endpoint_rate_tokens computes it as of now from rate_tokens and
-- rate_updated_at). An endpoint short of a token is next looked at when one is there
-- (endpoint_ready_at): it costs a claim nothing meanwhile, however many wait. Probes of an
-- open circuit spend tokens too. A new rate starts with a full bucket. Limited endpoints
-- only: an endpoint with no rate of its own takes the same path as before, plus one
-- function call that returns null.
--
-- Redefined whole: endpoint_ready_at (as 20261130200000, with the token wait on top of its
-- answer), the claim (as 20261130200000, with the bucket: take no more than it holds, then
-- store what is left before endpoint_ready_at reads it), the update trigger (as
-- 20261130200000, copying the rate with the cap) and the insert trigger.
-- Tests: supabase/tests/scheduling/endpoint-own-rate.test.sql; end to end, the "rate"
-- case of supabase/functions/webhook-dispatcher/isolation_test.ts.

alter table public.webhooks
  add column max_requests_per_second integer,
  add constraint webhooks_max_requests_per_second_range
    check (max_requests_per_second between 1 and 10000);
comment on column public.webhooks.max_requests_per_second is
  'Most requests this endpoint is sent per second, across all dispatchers (1-10,000; at most this many at once after a quiet second). Null: no limit of its own.';
comment on constraint webhooks_max_requests_per_second_range on public.webhooks is
  'max_requests_per_second must be between 1 and 10000, or null for no limit';
grant insert (max_requests_per_second), update (max_requests_per_second) on public.webhooks to authenticated;

alter table private.webhook_endpoints
  add column max_requests_per_second integer,
  add column rate_tokens double precision,
  add column rate_updated_at timestamptz;
comment on column private.webhook_endpoints.max_requests_per_second is
  'A copy of public.webhooks.max_requests_per_second (kept by the webhooks triggers), where claims read it.';
comment on column private.webhook_endpoints.rate_tokens is
  'Requests the endpoint''s bucket held at rate_updated_at (null: full). See private.endpoint_rate_tokens.';
update private.webhook_endpoints e
   set max_requests_per_second = w.max_requests_per_second
  from public.webhooks w
 where w.id = e.webhook_id and w.max_requests_per_second is not null;

-- The one home of the bucket's arithmetic.
create function private.endpoint_rate_tokens(endpoint private.webhook_endpoints)
returns double precision
language plpgsql
stable
set search_path = ''
as $$
declare
  rate integer := endpoint.max_requests_per_second;
begin
  if rate is null then
    return null;
  end if;
  return least(rate::double precision,
               coalesce(endpoint.rate_tokens, rate)
                 + rate * greatest(0, extract(epoch from now() - coalesce(endpoint.rate_updated_at, now()))::double precision));
end;
$$;
comment on function private.endpoint_rate_tokens(private.webhook_endpoints) is
  'Requests the endpoint may be sent now under its own rate: its bucket (at most one second of requests) refilled since rate_updated_at. Null: no rate of its own.';
revoke execute on function private.endpoint_rate_tokens(private.webhook_endpoints) from public;

create or replace function private.tg_webhooks__track_endpoint()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.webhook_endpoints (webhook_id, company_id, max_concurrent_requests, max_requests_per_second)
  values (new.id, new.company_id, new.max_concurrent_requests, new.max_requests_per_second);
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
  ready timestamptz;
  tokens double precision := private.endpoint_rate_tokens(endpoint);
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
    ready := case when in_flight > 0 then first_expiry else greatest(endpoint.next_probe_at, earliest) end;
  elsif in_flight >= cap then
    ready := first_expiry;
  elsif served and earliest <= now() then
    ready := now();
  else
    ready := earliest;
  end if;
  -- Rate-limited with less than one request's token: not before the next one is there.
  if tokens < 1 then
    ready := greatest(ready, now() + make_interval(secs => (1 - tokens) / endpoint.max_requests_per_second));
  end if;
  return ready;
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
  tokens double precision;  -- the endpoint's requests left this second (null: no rate of its own)
  leased_here integer;      -- leased for the endpoint in hand
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
    tokens := null;
    leased_here := 0;

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
      -- Its own rate (20261130220000): no more than the requests its bucket holds.
      tokens := private.endpoint_rate_tokens(endpoint);
      if tokens is not null then
        take := least(take, floor(tokens)::integer);
      end if;

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
        leased_here := leased_here + leased_now;

        served := served or cardinality(heads) > 0;
        take := least(take - cardinality(heads), batch_size - claimed);
        -- Fewer due rows than asked for: nothing more is due now.
        exit when cardinality(due) < take + cardinality(heads);
      end loop;
    end if;

    if tokens is not null then
      -- What is left in its bucket, as of now; endpoint_ready_at (next statement) reads it.
      update private.webhook_endpoints e
         set rate_tokens = tokens - leased_here, rate_updated_at = now()
       where e.webhook_id = endpoint.webhook_id;
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
           (o.max_concurrent_requests, o.max_requests_per_second)
             is distinct from (n.max_concurrent_requests, n.max_requests_per_second) as new_cap,
           n.max_concurrent_requests, n.max_requests_per_second
      from new_rows n
      join old_rows o on o.id = n.id
     where (o.is_active, o.url, o.delivery_order, o.max_concurrent_requests, o.max_requests_per_second)
           is distinct from (n.is_active, n.url, n.delivery_order, n.max_concurrent_requests, n.max_requests_per_second)
     order by n.id
  loop
    perform 1 from private.webhook_endpoints e where e.webhook_id = change.id for update;

    -- The ADMIN's own cap and rate, copied to where claims and records read them (first,
    -- so that what follows sees them). A lowered cap: the requests in flight above it
    -- finish, and no claim takes more until they have. A new rate starts with a full
    -- bucket of its own (one second of requests). Raised or removed: the endpoint may take
    -- more now.
    if change.new_cap then
      update private.webhook_endpoints e
         set max_concurrent_requests = change.max_concurrent_requests,
             max_requests_per_second = change.max_requests_per_second,
             rate_tokens = case when e.max_requests_per_second is distinct from change.max_requests_per_second
                                then null else e.rate_tokens end,
             rate_updated_at = case when e.max_requests_per_second is distinct from change.max_requests_per_second
                                    then null else e.rate_updated_at end
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

-- Switching an ordered endpoint to parallel releases its held deliveries in steps.
--
-- The switch (tg_webhooks__apply_endpoint_changes) cleared the ordering key of every pending
-- delivery of the endpoint, and released the parked ones, in the ADMIN's own statement,
-- holding the endpoint's row. Measured here: 4.3 s for 100,000 pending ordered deliveries,
-- 22 s for 500,000 (bench/probes/switch-to-parallel.mjs). Meanwhile every dispatcher recording a result of
-- that endpoint waited for the row, and with it the results of every other tenant in its
-- batch, and its next claim; and on hosted Supabase the ADMIN's statement ends in the 8 s
-- statement timeout of `authenticated`, so a large backlog could never be switched at all.
-- An ordered endpoint whose receiver was down for a day has such a backlog, and that is
-- when its ADMIN wants it to go in parallel.
--
-- Now the switch releases at most cancel_batch_size (200) deliveries itself, as a disable
-- cancels (20261130140000), and, if there may be more, leaves a row in
-- private.webhook_order_releases (the endpoint, and which deliveries: every keyed one while
-- the endpoint stays parallel; if it is switched back to ordered meanwhile, those created
-- before that switch, as a re-enable bounds a cancellation). Every
-- claim, by any dispatcher, releases one chunk of the oldest such row without waiting on
-- anything, until none it covers is left. Meanwhile the deliveries not yet released still
-- go one at a time per key; what is released goes in parallel at once. A key whose
-- deliveries are released in different chunks has its earliest still keyed one released
-- from parking too: the one it waited for no longer belongs to the key.
-- private.release_ordered_deliveries is what a switch does to a delivery (one home);
-- private.next_dispatch_at counts an unfinished release as due now, so a drain keeps
-- claiming until it has ended.
--
-- Also in the claim: the comment on deliveries of a deleted endpoint said the writes lock
-- the endpoints they fan out to; since 20261130210000 they lock nothing. No change of
-- behaviour.
-- Test: supabase/tests/ordering/switch-to-parallel-releases-held.test.sql.

create table private.webhook_order_releases (
  webhook_id uuid primary key references private.webhook_endpoints (webhook_id) on delete cascade,
  -- The deliveries it covers: pending, still keyed, created before this.
  through timestamptz not null,
  requested_at timestamptz not null default now()
);
comment on table private.webhook_order_releases is
  'Switches of an endpoint to parallel left unfinished (more than cancel_batch_size ordered deliveries pending); claims finish them, a chunk per claim.';
create index webhook_order_releases_requested_idx on private.webhook_order_releases (requested_at, webhook_id);
alter table private.webhook_order_releases enable row level security;
revoke all on private.webhook_order_releases from anon, authenticated;

create function private.release_ordered_deliveries(webhook_id uuid, through timestamptz, chunk integer, skip_locked boolean)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  chosen uuid[];
  keys text[];
  released integer;
begin
  if skip_locked then
    select array_agg(p.id), array_agg(distinct p.ordering_key) into chosen, keys
      from (select p.id, p.ordering_key
              from public.webhook_deliveries p
             where p.webhook_id = release_ordered_deliveries.webhook_id
               and p.state = 'pending'
               and p.ordering_key is not null
               and p.created_at < release_ordered_deliveries.through
             order by p.ordering_key, p.ordering_seq
             limit chunk
               for no key update skip locked) p;
  else
    select array_agg(p.id), array_agg(distinct p.ordering_key) into chosen, keys
      from (select p.id, p.ordering_key
              from public.webhook_deliveries p
             where p.webhook_id = release_ordered_deliveries.webhook_id
               and p.state = 'pending'
               and p.ordering_key is not null
               and p.created_at < release_ordered_deliveries.through
             order by p.ordering_key, p.ordering_seq
             limit chunk
               for no key update) p;
  end if;
  if chosen is null then
    return 0;
  end if;
  update public.webhook_deliveries d
     set ordering_key = null,
         ordering_seq = null,
         next_attempt_at = case when d.next_attempt_at = 'infinity' then now() else d.next_attempt_at end
   where d.id = any (chosen);
  get diagnostics released = row_count;
  -- A key that still has keyed deliveries (the rest of it, for later chunks; or new ones,
  -- the endpoint being ordered again): its earliest one goes now if it is parked. It may be
  -- parked behind one just released, which no longer belongs to the key and so releases
  -- nothing of it when it ends. (Never waits: a row someone holds is someone's claim,
  -- which decides for it.)
  update public.webhook_deliveries d
     set next_attempt_at = now()
   where d.id = any (array(select h.id
                             from public.webhook_deliveries h
                            where h.id in (select distinct on (n.ordering_key) n.id
                                             from public.webhook_deliveries n
                                            where n.webhook_id = release_ordered_deliveries.webhook_id
                                              and n.state = 'pending'
                                              and n.ordering_key = any (keys)
                                            order by n.ordering_key, n.ordering_seq)
                              and h.next_attempt_at = 'infinity'
                              for no key update skip locked));
  return released;
end;
$$;
comment on function private.release_ordered_deliveries(uuid, timestamptz, integer, boolean) is
  'What switching an endpoint to parallel does to its deliveries, chunk at a time: up to chunk pending ones still keyed and created before through lose their key, and the held ones are due now; the earliest still keyed of each key it touched goes now if it was held. Returns how many lost their key.';
revoke execute on function private.release_ordered_deliveries(uuid, timestamptz, integer, boolean) from public;

create or replace function private.next_dispatch_at()
returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
  select case when exists (select 1 from private.webhook_endpoint_signals)
                or exists (select 1 from private.webhook_cancellations)
                or exists (select 1 from private.webhook_order_releases) then now()
              else (select min(e.ready_at) from private.webhook_endpoints e where e.ready_at is not null)
         end
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
    -- finish, and no claim takes more until they have. A first rate starts with a full
    -- bucket (null: full); a changed one keeps how full its bucket is, as a share of the
    -- capacity (so changing it sends no burst); no rate, no bucket. Raised or removed: the
    -- endpoint may take more now. (In SET, e.* is the row before this update.)
    if change.new_cap then
      update private.webhook_endpoints e
         set max_concurrent_requests = change.max_concurrent_requests,
             max_requests_per_second = change.max_requests_per_second,
             rate_tokens = case
                             when e.max_requests_per_second is not distinct from change.max_requests_per_second then e.rate_tokens
                             when e.max_requests_per_second is null or change.max_requests_per_second is null then null
                             else private.endpoint_rate_tokens(e)
                                    / private.endpoint_rate_capacity(e.max_requests_per_second)
                                    * private.endpoint_rate_capacity(change.max_requests_per_second)
                           end,
             rate_updated_at = case
                                 when e.max_requests_per_second is not distinct from change.max_requests_per_second then e.rate_updated_at
                                 when e.max_requests_per_second is null or change.max_requests_per_second is null then null
                                 else greatest(now(), e.rate_updated_at)
                               end
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
    -- to the deliveries created from then on (20261129110000). At most cancel_batch_size
    -- here; if there may be more, the claims release the rest, a chunk each
    -- (private.webhook_order_releases, 20261201090300).
    if change.old_order = 'ordered' and change.delivery_order = 'parallel' then
      if private.release_ordered_deliveries(change.id, 'infinity',
                                            (select s.cancel_batch_size from private.webhook_settings s), false)
         = (select s.cancel_batch_size from private.webhook_settings s) then
        -- Every keyed one while the endpoint stays parallel (a write that read it ordered
        -- may commit after this); switching back to ordered stops it at that switch.
        insert into private.webhook_order_releases as r (webhook_id, through)
        values (change.id, 'infinity')
        on conflict on constraint webhook_order_releases_pkey do update set through = 'infinity';
        perform private.wake_dispatchers_if_none_awake();
      else
        delete from private.webhook_order_releases r where r.webhook_id = change.id;
      end if;
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id;
    elsif change.old_order = 'parallel' and change.delivery_order = 'ordered' then
      -- Ordered again before the claims finished releasing: what is created from now on
      -- keeps its key. (Created before this transaction began: a write that read the
      -- endpoint parallel created none.)
      update private.webhook_order_releases r
         set through = now()
       where r.webhook_id = change.id
         and r.through = 'infinity';
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
             -- Taken now that the endpoint's lock is held: a claim made after this
             -- transaction began, but before the lock, sent to the old url.
             receiver_since = clock_timestamp()
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
  order_release private.webhook_order_releases;
  chunk integer;
  tokens double precision;  -- requests in the endpoint's bucket now (null: no rate of its own)
  leased_here integer;      -- leased for the endpoint in hand
  parked_keys text[];       -- ordering keys of what this claim parked for the endpoint in hand
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

  -- One switch to parallel left unfinished (20261201090300): a chunk of the oldest one this
  -- claim can take, of the three oldest, released as the switch released its first; in the
  -- same lock order as the cancellations above (the endpoint's row, the release's, then the
  -- deliveries, each SKIP LOCKED). Ended once nothing it covers is left.
  for order_release in
    select * from private.webhook_order_releases r order by r.requested_at, r.webhook_id limit 3
  loop
    perform 1 from private.webhook_endpoints e where e.webhook_id = order_release.webhook_id for update skip locked;
    continue when not found;
    select * into order_release
      from private.webhook_order_releases r
     where r.webhook_id = order_release.webhook_id
       for update skip locked;
    continue when not found;
    perform private.release_ordered_deliveries(order_release.webhook_id, order_release.through,
                                               (select s.cancel_batch_size from private.webhook_settings s), true);
    if not exists (select 1 from public.webhook_deliveries d
                    where d.webhook_id = order_release.webhook_id and d.state = 'pending'
                      and d.ordering_key is not null and d.created_at < order_release.through) then
      delete from private.webhook_order_releases r where r.webhook_id = order_release.webhook_id;
    end if;
    -- What it released is due now.
    update private.webhook_endpoints e
       set ready_at = private.endpoint_ready_at(e, false)
     where e.webhook_id = order_release.webhook_id;
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
  -- cleared it to null: a chunk of those too). A write locks no endpoint (20261130210000:
  -- it never waits for a delete), so this is how the deliveries of a write that raced a
  -- delete end: cancelled by the claims that follow this one. (The ADMIN RPCs hold their
  -- endpoint against a delete, so theirs never come here.)
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
    parked_keys := '{}';

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
          -- Their keys, for the check after this endpoint's passes (20261201090200).
          parked_keys := parked_keys || array(select distinct q.ordering_key
                                                from public.webhook_deliveries q
                                               where q.id = any (due)
                                                 and not q.id = any (heads)
                                                 and q.ordering_key is not null);
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

      -- A key whose earliest pending delivery is parked while nothing of the key is in
      -- flight would wait for ever (the delivery it waited for is waiting on a retry, or its
      -- lease ran out, and that one now waits for it): it goes now, at the next claim
      -- (20261201090200). Once per endpoint a claim visits, each key by one index probe.
      if cardinality(parked_keys) > 0 then
        update public.webhook_deliveries d
           set next_attempt_at = now()
         where d.id = any (array(select (select p.id
                                           from public.webhook_deliveries p
                                          where p.webhook_id = endpoint.webhook_id
                                            and p.state = 'pending'
                                            and p.ordering_key is not null
                                            and p.ordering_key = k.ordering_key
                                          order by p.ordering_seq
                                          limit 1)
                                   from (select distinct u.ordering_key from unnest(parked_keys) u(ordering_key)) k))
           and d.next_attempt_at = 'infinity'
           and not exists (select 1
                             from public.webhook_deliveries f
                            where f.webhook_id = d.webhook_id
                              and f.state = 'pending'
                              and f.lease_owner is not null
                              and f.lease_expires_at > now()
                              and f.ordering_key = d.ordering_key);
      end if;
    end if;

    if tokens is not null then
      -- What is left in its bucket, as of now; endpoint_ready_at (next statement) reads it.
      -- Never back in time: a claim whose transaction began before the last one's (a
      -- record-and-claim that recorded first) must not make the next refill count that
      -- stretch twice.
      update private.webhook_endpoints e
         set rate_tokens = tokens - leased_here,
             rate_updated_at = greatest(e.rate_updated_at, now())
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

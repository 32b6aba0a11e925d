-- An ADMIN's change never moves an endpoint ahead in the claims' line.
--
-- Claims visit endpoints longest waiting first (ready_at), and since 20261201090400 an
-- endpoint a claim or a record has just served goes to the back of the line. But an ADMIN's
-- change to an endpoint (its cap or rate, its delivery order, its url, enabling it again)
-- and an ADMIN cancelling one of its deliveries made it ready again from its oldest due
-- delivery: for an endpoint with a backlog, long ago, so the front of the line. An ADMIN
-- could move their company's endpoints ahead of every other tenant's by setting a cap back
-- and forth, and each such edit did so by accident.
--
-- Now such a change leaves an endpoint that was waiting in line where it stood (later, if
-- the change makes it wait longer: a lowered cap, a rate), and one that was not in line (at
-- its cap, its circuit open, disabled, nothing due) joins it at the back, from now.
-- private.endpoint_ready_after_change says so, once; the trigger and the RPC use it where
-- they used endpoint_ready_at(e, false), and so do the two places where claims finish what
-- an ADMIN's change left to them: the end of a cancellation (an endpoint enabled again
-- before it ended gets its schedule back) and each chunk of a switch to parallel. The rest
-- of the dispatchers' paths are unchanged.
-- Tests: supabase/tests/scheduling/admin-changes-keep-the-place-in-line.test.sql.

create or replace function private.endpoint_ready_after_change(endpoint private.webhook_endpoints)
returns timestamptz
language plpgsql
volatile  -- reads the clock
set search_path = ''
as $$
declare
  at timestamptz := private.endpoint_ready_at(endpoint, false);
begin
  if at is null then
    return null;
  -- In line (its ready_at has come): it keeps its place, or waits longer. (The clock, not
  -- now(): a claim that served it after this transaction began put it at the back, from
  -- then; it stays there.)
  elsif endpoint.ready_at <= clock_timestamp() then
    return greatest(at, endpoint.ready_at);
  end if;
  -- Not in line: from now if due, as a served endpoint (20261201090400).
  return private.endpoint_ready_at(endpoint, true);
end;
$$;
comment on function private.endpoint_ready_after_change(private.webhook_endpoints) is
  'Where an endpoint stands in the claims'' line after an ADMIN''s change to it (pass the row as it was, with the change applied to everything but ready_at): where it stood if it was in line, else from now. Never ahead of where it stood.';
revoke execute on function private.endpoint_ready_after_change(private.webhook_endpoints) from public;

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
         set ready_at = private.endpoint_ready_after_change(e)
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
         set ready_at = private.endpoint_ready_after_change(e)
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
         set ready_at = private.endpoint_ready_after_change(e)
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
         set ready_at = private.endpoint_ready_after_change(e)
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

create or replace function public.cancel_webhook_delivery(delivery_id uuid)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  target public.webhook_deliveries;
begin
  select * into target from public.webhook_deliveries d where d.id = cancel_webhook_delivery.delivery_id;
  if target.id is null or private.can_manage_company(target.company_id) is not true then
    raise exception 'delivery % does not exist or you are not an active ADMIN of its company', delivery_id
      using errcode = '42501';
  end if;
  -- Lock order: the endpoint, then its deliveries (as the dispatcher's functions).
  perform 1 from private.webhook_endpoints e where e.webhook_id = target.webhook_id for update;
  update public.webhook_deliveries d
     set state = 'cancelled',
         next_attempt_at = null,
         completed_at = now(),
         lease_owner = null,
         lease_expires_at = null,
         last_error = 'cancelled by an admin'
   where d.id = target.id
     and d.state = 'pending'
  returning * into target;
  if target.id is null then
    raise exception 'delivery % has already ended', delivery_id
      using errcode = '55000', hint = 'Only pending deliveries can be cancelled; redeliver it to send it again.';
  end if;
  -- The next delivery of its key (ordered endpoints) may go now.
  update public.webhook_deliveries d
     set next_attempt_at = now()
   where d.id = (select n.id
                   from public.webhook_deliveries n
                  where n.webhook_id = target.webhook_id
                    and n.ordering_key = target.ordering_key
                    and n.state = 'pending'
                  order by n.ordering_seq
                  limit 1)
     and d.next_attempt_at = 'infinity';
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_after_change(e)
   where e.webhook_id = target.webhook_id;
  return target.id;
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
  candidates_since timestamptz[];  -- since when each candidate has waited, in its order
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
         set ready_at = private.endpoint_ready_after_change(e)
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
       set ready_at = private.endpoint_ready_after_change(e)
     where e.webhook_id = order_release.webhook_id;
    exit;
  end loop;

  -- Endpoints to look at, longest waiting first: those whose ready_at has come, and those
  -- with new deliveries (signals). Only these are visited: endpoints waiting on a later
  -- retry, at their concurrency or with an open circuit cost nothing here.
  select array_agg(c.webhook_id order by c.since, c.webhook_id),
         array_agg(c.since order by c.since, c.webhook_id)
    into candidates, candidates_since
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
    -- Served: to the back of the line. Not served (this claim was full before its turn, or
    -- it could take nothing): it keeps its place, never ahead of where it stood
    -- (20261201090400).
    update private.webhook_endpoints e
       set ready_at = case
                        when served then private.endpoint_ready_at(e, true)
                        else (select case when r.at is null then null
                                          else greatest(r.at, candidates_since[array_position(candidates, e.webhook_id)]) end
                                from (select private.endpoint_ready_at(e, false) as at) r)
                      end
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

-- A rate-limited endpoint is visited when its bucket holds a claim's worth, and its clock
-- never runs backwards (review of 20261130220000/220100).
--
-- - endpoint_ready_at waited for one token. At 20 a second (a bucket of 2) a backlogged
--   endpoint was then visited about 20 times a second for one delivery each, at 10,000 a
--   second every claim found it ready again: each visit pays the endpoint's full turn in the
--   claim (its in-flight count, due rows, secrets, two updates). It now waits until the
--   bucket holds what a claim could take: a full bucket (a tenth of a second of requests),
--   or the slots the endpoint has free if fewer, at least one. So a backlogged limited
--   endpoint is visited about ten times a second, as 20261130220100 said.
-- - The wait was rounded to the nearest microsecond by make_interval. When 1/rate is not a
--   whole number of microseconds (3 a second), a wait rounded down found the bucket at
--   0.999999 at ready_at: the visit took nothing. It is rounded up now.
-- - The claim stored rate_updated_at = now(), the start of its transaction. A
--   record-and-claim that began before another claim, and reached the endpoint after it,
--   moved the clock back, and the next refill counted that stretch a second time (up to a
--   bucket more than the rate allows). It keeps the later of the two now.
-- The bucket's capacity moves to private.endpoint_rate_capacity, which endpoint_rate_tokens
-- and endpoint_ready_at both read (its one home). The rest as 20261130220000.
-- Test: supabase/tests/scheduling/endpoint-own-rate.test.sql.

-- PL/pgSQL, not SQL: a SQL function that sets search_path is planned again at every call
-- (20261130160000).
create function private.endpoint_rate_capacity(rate integer)
returns double precision
language plpgsql
immutable
set search_path = ''
as $$
begin
  return greatest(1, ceil(rate / 10.0));
end;
$$;
comment on function private.endpoint_rate_capacity(integer) is
  'Requests a rate-limited endpoint''s bucket holds: a tenth of a second of them, at least one.';
revoke execute on function private.endpoint_rate_capacity(integer) from public;

create or replace function private.endpoint_rate_tokens(endpoint private.webhook_endpoints)
returns double precision
language plpgsql
stable
set search_path = ''
as $$
declare
  rate integer := endpoint.max_requests_per_second;
  capacity double precision;
begin
  if rate is null then
    return null;
  end if;
  capacity := private.endpoint_rate_capacity(rate);
  return least(capacity,
               coalesce(endpoint.rate_tokens, capacity)
                 + rate * greatest(0, extract(epoch from now() - coalesce(endpoint.rate_updated_at, now()))::double precision));
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
  needed double precision;
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
  -- Rate-limited: not before its bucket holds what a claim could take (a full bucket, or
  -- the slots it has free if fewer; at least one request), so that each visit takes a
  -- tenth of a second of requests rather than one. Rounded up to the microsecond: a wait
  -- rounded down would find a bucket just short of it, and take nothing.
  needed := greatest(1, least(private.endpoint_rate_capacity(endpoint.max_requests_per_second), cap - in_flight));
  if tokens < needed then
    ready := greatest(ready, now() + make_interval(secs => ceil((needed - tokens) / endpoint.max_requests_per_second * 1e6) / 1e6));
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
  tokens double precision;  -- requests in the endpoint's bucket now (null: no rate of its own)
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

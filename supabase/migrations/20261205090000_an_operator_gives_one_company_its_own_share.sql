-- An operator gives one company a share of its own.
--
-- Since 20261204090000 a company's endpoints together have at most
-- private.webhook_settings.company_concurrency requests in flight (200 by default), one
-- number for every company. A large tenant whose healthy endpoints need more (at 200 ms a
-- request, 200 in flight is 1,000 deliveries/s) was held to it, and the only way out was to
-- raise it for everyone, which loosens the bound that keeps one tenant's dead endpoints from
-- taking a dispatcher's sockets. A tenant on probation (a receiver that keeps hanging) could
-- not be given less either.
--
-- Now private.webhook_company_concurrency holds a company's own share (1-100,000, the same
-- range, with the operator's reason), and private.company_concurrency(company) is the share
-- a company has: its own, else the setting. The claim counts against it. Raising a share
-- (a row added or raised, or removed where the setting is larger; or the setting raised for
-- the companies without a row of their own) wakes as many of the company's waiting endpoints
-- as it adds slots (private.wake_company_waiters), so the backlog flows at once instead of at
-- the company's next freed slot. A claim running while the share changes counts with the
-- share it read; an endpoint it turns away then waits for the next freed slot of its
-- company, or at the latest the company's earliest lease (as 20261204090000 says).
-- The row goes with its company (on delete cascade). Only the owner (an operator's SQL
-- session) may read or write it: RLS on, nothing granted.
--
-- The company's claim lock takes a 64-bit key of its own (private.company_lock_key) in place
-- of (private.company_lock_class(), hashtext(id)): with a 32-bit hash, the chance that some
-- two of 10,000 companies shared a lock was about 1 % (one in 2 at 77,000), and a claim of
-- one then skipped the other, whose results were kept for the next claim. The key is
-- hashtextextended(id, seed) with a seed of its own; it shares the key space of
-- single-bigint advisory locks, where a chance meeting is one in 2^64.
-- lock_endpoints_companies is as 20261204090000 left it but for the key.
--
-- claim_due_deliveries is as 20261204090000 left it but for the share it counts against,
-- and for the order of the company's lock and its count: the count had been in the
-- statement that took the lock, whose snapshot was older than the lock, so a claim that
-- committed its leases in between went uncounted (two claims could fill the share twice
-- over; the window is microseconds, found by review, not by a test: nothing outside can
-- pause a claim between its snapshot and its lock). Now the lock is a statement of its own
-- and the count reads after it.
-- Tests: supabase/tests/scheduling/company-own-share.test.sql; "companies whose ids share a
-- 32-bit hash" in tests/outbox/company-share-across-claimers.test.ts.

create table private.webhook_company_concurrency (
  company_id  uuid primary key references public.companies (id) on delete cascade,
  concurrency integer not null
    constraint webhook_company_concurrency_range check (concurrency between 1 and 100000),
  reason      text not null
    constraint webhook_company_concurrency_reason_given check (btrim(reason) <> ''),
  updated_at  timestamptz not null default now()
);
comment on table private.webhook_company_concurrency is
  'A company''s own share of requests in flight, in place of private.webhook_settings.company_concurrency, and why the operator set it (20261205090000).';
alter table private.webhook_company_concurrency enable row level security;
revoke all on private.webhook_company_concurrency from anon, authenticated, service_role;

create trigger set_updated_at
  before update on private.webhook_company_concurrency
  for each row execute function private.tg_set_updated_at();

create function private.company_lock_key(company_id uuid)
returns bigint
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- The seed is 'webh' in ASCII: any constant, the same everywhere the lock is taken.
  return pg_catalog.hashtextextended(company_lock_key.company_id::text, 2003133032);
end;
$$;
comment on function private.company_lock_key(uuid) is
  'The key of a company''s claim lock (pg_try_advisory_xact_lock(bigint)): held by a claim while it counts the company''s share, asked for by a record before it frees the company''s slots.';
revoke all on function private.company_lock_key(uuid) from public;

create or replace function private.lock_endpoints_companies(endpoints uuid[])
returns uuid[]
language plpgsql
volatile
set search_path = ''
as $$
begin
  -- The lock a claim holds while it counts a company's slots and turns its endpoints away
  -- (claim_due_deliveries), taken here without waiting: of the endpoints given, those
  -- whose company's lock this transaction now holds. A record frees slots only under it,
  -- so it never frees one while a claim is turning an endpoint away for the want of it
  -- (the endpoint would not be woken: its waiting row is not committed yet).
  return array(select e.webhook_id
                 from private.webhook_endpoints e
                where e.webhook_id = any (endpoints)
                  and e.company_id in (select c.company_id
                                         from (select distinct x.company_id
                                                 from private.webhook_endpoints x
                                                where x.webhook_id = any (endpoints)
                                                offset 0) c
                                        where pg_catalog.pg_try_advisory_xact_lock(private.company_lock_key(c.company_id)))
                order by e.webhook_id);
end;
$$;

drop function private.company_lock_class();

create function private.company_concurrency(company_id uuid)
returns integer
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce((select o.concurrency
                     from private.webhook_company_concurrency o
                    where o.company_id = company_concurrency.company_id),
                  (select s.company_concurrency from private.webhook_settings s));
end;
$$;
comment on function private.company_concurrency(uuid) is
  'The most requests in flight the company''s endpoints may have together: its own share (private.webhook_company_concurrency), else private.webhook_settings.company_concurrency.';
revoke all on function private.company_concurrency(uuid) from public;

-- A company's share raised: as many of its waiting endpoints as slots it gained are ready.
create function private.tg_webhook_company_concurrency__wake()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  company uuid := case when tg_op = 'DELETE' then old.company_id else new.company_id end;
  setting integer := (select s.company_concurrency from private.webhook_settings s);
  before_share integer := case when tg_op = 'INSERT' then setting else old.concurrency end;
  after_share integer := case when tg_op = 'DELETE' then setting else new.concurrency end;
begin
  if after_share > before_share then
    perform private.wake_company_waiters(
      jsonb_build_array(jsonb_build_object('company_id', company, 'slots', after_share - before_share)));
  end if;
  return null;
end;
$$;
revoke all on function private.tg_webhook_company_concurrency__wake() from public;

create trigger wake_waiters
  after insert or update or delete on private.webhook_company_concurrency
  for each row execute function private.tg_webhook_company_concurrency__wake();

-- The setting raised: the same, for every company without a share of its own.
create function private.tg_webhook_settings__wake_company_waiters()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform private.wake_company_waiters(
    (select jsonb_agg(jsonb_build_object('company_id', w.company_id, 'slots', new.company_concurrency - old.company_concurrency))
       from (select distinct x.company_id from private.webhook_company_waiters x) w
      where not exists (select 1 from private.webhook_company_concurrency o where o.company_id = w.company_id)));
  return null;
end;
$$;
revoke all on function private.tg_webhook_settings__wake_company_waiters() from public;

create trigger wake_company_waiters
  after update of company_concurrency on private.webhook_settings
  for each row
  when (new.company_concurrency > old.company_concurrency)
  execute function private.tg_webhook_settings__wake_company_waiters();

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
  companies uuid[] := '{}'::uuid[];        -- the companies this claim has counted, and
  company_free integer[] := '{}'::integer[];  -- how many more requests each may have in flight
  company_at integer;       -- the endpoint in hand's company, in those
  turned_away boolean;      -- its company has its share: it waits for a freed slot
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

  -- Results kept for endpoints someone held (20261203090000): recorded now for those no
  -- longer held, before anything is claimed (a delivery whose lease ran out meanwhile is
  -- then not sent again for a result already in hand). Never waits.
  perform private.record_deferred_results();

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
    company_at := null;
    turned_away := false;

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
      -- Its company's share (20261204090000; the company's own, if an operator gave it one,
      -- 20261205090000): counted once per company per claim, under a lock of the company
      -- that this claim holds until it commits, so that two claims never count the same
      -- slots; then kept here as this claim leases. A company another claim has in hand is
      -- skipped (null: it keeps its place), never waited for. Turned away with due work by
      -- its company's share, an endpoint waits for a freed slot.
      -- The lock is taken in a statement of its own, before the count: a statement reads
      -- the snapshot it started with, so a count in the statement that takes the lock would
      -- miss the leases of a claim that committed (and let the lock go) in between, and two
      -- claims could each fill the whole share (20261205090000).
      company_at := array_position(companies, endpoint.company_id);
      if company_at is null then
        companies := companies || endpoint.company_id;
        company_at := cardinality(companies);
        if pg_catalog.pg_try_advisory_xact_lock(private.company_lock_key(endpoint.company_id)) then
          company_free[company_at] := private.company_concurrency(endpoint.company_id)
                                      - private.company_in_flight(endpoint.company_id);
        else
          company_free[company_at] := null;
        end if;
      end if;
      if take > 0 and company_free[company_at] <= 0 then
        turned_away := exists (select 1
                                 from public.webhook_deliveries d
                                where d.webhook_id = endpoint.webhook_id
                                  and d.state = 'pending'
                                  and d.next_attempt_at <= now());
      end if;
      take := least(take, greatest(coalesce(company_free[company_at], 0), 0));
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
                 last_attempt_at  = now(),
                 updated_at       = now()  -- set here, the row trigger stays out (20261202090300)
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
      company_free[company_at] := company_free[company_at] - leased_here;
      if leased_here > 0 then  -- served: it waits for its company no longer
        delete from private.webhook_company_waiters w where w.webhook_id = endpoint.webhook_id;
      end if;
    end if;

    if turned_away then
      insert into private.webhook_company_waiters (webhook_id, company_id, since)
      values (endpoint.webhook_id, endpoint.company_id, candidates_since[array_position(candidates, endpoint.webhook_id)])
      on conflict on constraint webhook_company_waiters_pkey do nothing;
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
    -- (20261201090400). Turned away by its company's share: off the schedule until a freed
    -- slot of the company wakes it, or at the latest until the company's earliest lease runs
    -- out (20261204090000).
    update private.webhook_endpoints e
       set ready_at = case
                        when served then private.endpoint_ready_at(e, true)
                        else (select case when r.at is null then null
                                          else greatest(r.at, candidates_since[array_position(candidates, e.webhook_id)],
                                                        case when turned_away
                                                             then (select min(d.lease_expires_at)
                                                                     from public.webhook_deliveries d
                                                                    where d.company_id = e.company_id
                                                                      and d.state = 'pending'
                                                                      and d.lease_owner is not null
                                                                      and d.lease_expires_at > now()) end) end
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

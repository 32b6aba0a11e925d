-- A disable or a delete cancels a large backlog in bounded steps.
--
-- Disabling or deleting an endpoint cancelled every pending delivery it had, in the
-- statement that did it: 4.6-5.5 s for 200,000 on the test machine. Worse than the ADMIN's
-- wait (and the 8 s statement timeout of `authenticated` on hosted Supabase): the
-- dispatcher disables an endpoint that has failed for disable_after (5 days) or answered
-- 410 Gone, and a failing endpoint is exactly the one with a big backlog (its circuit held
-- it), so the whole cancel ran inside the dispatcher's record call, and every tenant's
-- deliveries waited for it.
--
-- Now private.cancel_pending_deliveries cancels at most cancel_batch_size (a setting, 200)
-- of them in the statement, and if there may be more it leaves a row in
-- private.webhook_cancellations: the endpoint, the reason, and a watermark (`through`:
-- 'infinity', every pending delivery, whenever created, until the endpoint is enabled
-- again; then the deliveries created before the re-enabling transaction began). Each claim then cancels one such chunk,
-- of the oldest cancellation it can take, without waiting on anything (SKIP LOCKED), and
-- removes the row once nothing pending is left under its watermark. Until then:
-- - the deliveries waiting to be cancelled are still `pending` in the log (for the few
--   seconds it takes);
-- - an endpoint enabled again sends nothing: not what its disable cancels (they are still
--   cancelled, by their watermark), nor what came since, which waits behind them. The
--   watermark is on created_at, the creating transaction's start: a write that began
--   before the re-enable and commits after it, while the cancellation is unfinished
--   (seconds), has its deliveries cancelled too;
-- - private.next_dispatch_at says now, so a sleeping worker comes for it, a drain of the
--   edge function keeps claiming while it is unfinished (engine.ts), and the disable wakes
--   a dispatcher if none is awake.
-- Measured (200,000 pending, one session claiming in a loop): the delete or disable takes
-- 4-11 ms instead of 4.6-5.5 s; a claim carrying a chunk takes about 7 ms instead of 0.5;
-- the last of the 200,000 is cancelled 7.7 s after the delete. The business path is
-- untouched.
-- Tests: supabase/tests/scheduling/cancel-large-backlogs-in-steps.test.sql; end to end,
-- "an endpoint that answers 410 with a large backlog" in webhook-dispatcher/isolation_test.ts
-- and "one wake-up finishes a large cancellation" in webhook-dispatcher/http_mode_test.ts.

alter table private.webhook_settings
  add column cancel_batch_size integer not null default 200
    constraint webhook_settings_cancel_batch_size_range check (cancel_batch_size between 1 and 100000);
comment on column private.webhook_settings.cancel_batch_size is
  'Pending deliveries a disable or delete cancels in its own statement, and each claim cancels of what is left (private.webhook_cancellations).';

create table private.webhook_cancellations (
  -- No foreign key: a deleted endpoint's cancellation outlives it.
  webhook_id   uuid primary key,
  reason       text not null,
  -- Pending deliveries of the endpoint created up to this time end cancelled.
  through      timestamptz not null,
  requested_at timestamptz not null default now()
);
comment on table private.webhook_cancellations is
  'Cancellations a disable or delete left unfinished (more than cancel_batch_size pending deliveries); claims finish them, a chunk per claim.';
create index webhook_cancellations_requested_idx on private.webhook_cancellations (requested_at, webhook_id);
alter table private.webhook_cancellations enable row level security;
revoke all on private.webhook_cancellations from anon, authenticated;

-- Cancels up to `chunk` pending deliveries of the endpoint created before `through`;
-- returns how many. `skip_locked`: claims never wait; a disable or delete, holding the
-- endpoint's row, waits for the few delivery rows someone else updates (an ADMIN's single
-- cancel). FOR NO KEY UPDATE, not FOR UPDATE: the key-share locks of a redelivery's or a
-- prune's foreign-key check on a delivery must not make it wait.
create function private.cancel_deliveries_through(webhook_id uuid, reason text, through timestamptz,
                                                  chunk integer, skip_locked boolean)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  cancelled integer;
begin
  if skip_locked then
    update public.webhook_deliveries d
       set state = 'cancelled', next_attempt_at = null, completed_at = now(),
           lease_owner = null, lease_expires_at = null, last_error = reason
     where d.id = any (array(select p.id
                               from public.webhook_deliveries p
                              where p.webhook_id = cancel_deliveries_through.webhook_id
                                and p.state = 'pending'
                                and p.created_at < cancel_deliveries_through.through
                              order by p.next_attempt_at
                              limit chunk
                                for no key update skip locked));
  else
    update public.webhook_deliveries d
       set state = 'cancelled', next_attempt_at = null, completed_at = now(),
           lease_owner = null, lease_expires_at = null, last_error = reason
     where d.id = any (array(select p.id
                               from public.webhook_deliveries p
                              where p.webhook_id = cancel_deliveries_through.webhook_id
                                and p.state = 'pending'
                                and p.created_at < cancel_deliveries_through.through
                              order by p.next_attempt_at
                              limit chunk
                                for no key update));
  end if;
  get diagnostics cancelled = row_count;
  return cancelled;
end;
$$;
revoke execute on function private.cancel_deliveries_through(uuid, text, timestamptz, integer, boolean) from public;

-- Same signature and callers (the disable trigger, the claim's check of a disabled
-- endpoint, and since 20261130150000 the delete trigger); now bounded, as above. It covers
-- every pending delivery of the endpoint ('infinity'), whenever created: a write that
-- started after the disable or delete began may have fanned out to the endpoint (it read
-- it active, or a delete waited for earlier writes: shared row locks do not queue behind
-- it), and its deliveries must end too, though the endpoint's schedule is cleared here.
-- Only enabling the endpoint again bounds it (tg_webhooks__apply_endpoint_changes below).
-- If the chunk was not full, everything pending is cancelled, and an earlier
-- cancellation of the endpoint ends too.
create or replace function private.cancel_pending_deliveries(webhook_id uuid, reason text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  chunk integer := (select s.cancel_batch_size from private.webhook_settings s);
begin
  if private.cancel_deliveries_through(webhook_id, reason, 'infinity', chunk, false) = chunk then
    -- Perhaps more: the claims finish it.
    insert into private.webhook_cancellations as c (webhook_id, reason, through)
    values (cancel_pending_deliveries.webhook_id, cancel_pending_deliveries.reason, 'infinity')
    on conflict on constraint webhook_cancellations_pkey
    do update set reason = excluded.reason, through = 'infinity';
    perform private.wake_dispatchers_if_none_awake();
  else
    delete from private.webhook_cancellations c where c.webhook_id = cancel_pending_deliveries.webhook_id;
  end if;
  update private.webhook_endpoints e
     set ready_at = null
   where e.webhook_id = cancel_pending_deliveries.webhook_id;
end;
$$;

-- Enabling an endpoint again bounds its unfinished cancellation to what was created before
-- (the rest of the trigger as 20261129160200 left it).
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
           o.delivery_order as old_order, n.delivery_order
      from new_rows n
      join old_rows o on o.id = n.id
     where (o.is_active, o.url, o.delivery_order) is distinct from (n.is_active, n.url, n.delivery_order)
     order by n.id
  loop
    perform 1 from private.webhook_endpoints e where e.webhook_id = change.id for update;

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

-- A cancellation left to finish is work for a dispatcher now.
create or replace function private.next_dispatch_at()
returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
  select case when exists (select 1 from private.webhook_endpoint_signals)
                or exists (select 1 from private.webhook_cancellations) then now()
              else (select min(e.ready_at) from private.webhook_endpoints e where e.ready_at is not null)
         end
$$;

-- The claim: a chunk of one cancellation first; nothing sent for an endpoint whose
-- cancellation is not finished; a cancellation, not one unbounded update, for the
-- deliveries of an endpoint found deleted. Otherwise as 20261130130000 left it.
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
  claimed uuid[] := '{}'::uuid[];
  served boolean;
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

    if not hook.is_active then
      -- Disabled while a transaction was creating deliveries for it: they end here.
      perform private.cancel_pending_deliveries(hook.id, 'endpoint disabled: ' || coalesce(hook.disabled_reason, 'no reason given'));
      continue;
    end if;

    -- Enabled again before the cancellation its disable left had ended: what that disable
    -- cancels must not go out, and what came since waits behind it (an ordered key's order).
    if cardinality(claimed) < batch_size
       and not exists (select 1 from private.webhook_cancellations c where c.webhook_id = endpoint.webhook_id) then
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

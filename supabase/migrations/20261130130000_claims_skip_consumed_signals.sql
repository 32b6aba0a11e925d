-- A claim no longer walks the signals earlier claims consumed.
--
-- Every statement that creates deliveries leaves one signal per endpoint, and the next
-- claim that picks the endpoint deletes all of its signals. A deleted signal's index entry
-- stays until VACUUM gets to the table (autovacuum looks at most once a minute). The claim
-- deleted through a bitmap scan of the webhook_id index, and a bitmap scan never marks an
-- entry dead: so every claim went through every consumed signal of its endpoints again,
-- index entries and heap pages, until the next VACUUM. After one transaction had enqueued
-- 30,000 events (a bulk import; the throughput benchmark's 20,000), that delete was 1.06 ms
-- of a 2.2 ms claim of 10 deliveries on the test machine, every claim; under a steady
-- business load (one signal per write) it grows with the writes since the last VACUUM.
--
-- The delete moves into its own function, planned as a plain index scan of the webhook_id
-- index, with bitmap and sequential scans off: a plain index scan marks each dead entry it
-- meets, so the next scan skips it without a heap visit. (A sequential scan, which the
-- planner picks when one endpoint has most of the signals, reads every dead row too.) The
-- delete only ever wants the signals of at most batch_size endpoints, so the index is
-- always the right path. Nothing else in the claim changes (a claim-wide setting would turn
-- the orphan cancel's OR into a sequential scan of the deliveries).
-- Test: tests/outbox/claims-skip-consumed-signals.test.ts.

-- Deletes the signals of the endpoints a claim looked at: all of those of the endpoints it
-- picked, and those of endpoints that no longer exist. Returns the latter (the claim
-- cancels what they announced).
create function private.consume_endpoint_signals(candidates uuid[], picked uuid[])
returns uuid[]
language sql
volatile
set search_path = ''
set enable_bitmapscan = off
set enable_seqscan = off
as $$
  -- SKIP LOCKED: a signal of a missing endpoint that another claim is deleting is its to
  -- handle; a claim never waits for another.
  with gone as (
    delete from private.webhook_endpoint_signals s
     where s.id = any (array(select l.id
                               from private.webhook_endpoint_signals l
                              where l.webhook_id = any (candidates)
                                and (l.webhook_id = any (picked)
                                     or not exists (select 1 from private.webhook_endpoints e where e.webhook_id = l.webhook_id))
                                for update skip locked))
    returning s.webhook_id
  )
  select array_agg(distinct g.webhook_id)
    from gone g
   where not g.webhook_id = any (picked);
$$;
revoke execute on function private.consume_endpoint_signals(uuid[], uuid[]) from public;

-- The claim, unchanged but for the call above. Generic plans for the session, as
-- 20261129150200 set.
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
  -- committed after the delete's cancel: they end cancelled here. Their webhook_id names
  -- the deleted endpoint (since 20261130120000 a delete leaves its log alone; before, the
  -- foreign key cleared it to null). The writes and the ADMIN RPCs lock the endpoints they
  -- create deliveries for, so this is a last line, not a path anything takes by design.
  orphans := private.consume_endpoint_signals(candidates, coalesce(picked, '{}'));
  if orphans is not null then
    update public.webhook_deliveries d
       set state = 'cancelled', next_attempt_at = null, completed_at = now(),
           lease_owner = null, lease_expires_at = null, last_error = 'endpoint deleted'
     where d.state = 'pending' and (d.webhook_id = any (orphans) or d.webhook_id is null);
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

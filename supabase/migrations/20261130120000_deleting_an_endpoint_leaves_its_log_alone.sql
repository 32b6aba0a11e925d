-- Deleting an endpoint leaves its delivery log alone.
--
-- The deliveries' foreign key to webhooks (on delete set null) rewrote every delivery the
-- endpoint had ever had, in the ADMIN's own delete: about 4.6 s for 200,000 (the test
-- machine), so an endpoint with a busy month of history met the 8 s statement timeout of
-- `authenticated` on hosted Supabase and could not be deleted at all, and the company's
-- writes fanning out to it waited for the whole rewrite (they lock the endpoints they fan
-- out to). Each rewritten row was a new row version in every index of the table.
--
-- The foreign key is dropped. A delete now cancels the endpoint's pending deliveries (its
-- BEFORE DELETE trigger, as before) and writes nothing else: the history keeps the id of
-- the endpoint it went to, which no endpoint has any more. Deliveries of endpoints deleted
-- before this migration keep null. Either way the endpoint is gone, and:
-- - redeliver_webhook_delivery answers "the endpoint of delivery % was deleted" for both;
-- - the claim cancels a pending delivery whose endpoint no longer exists, by the id its
--   signal names, as well as the ones with null (nothing should create one: the business
--   path and the ADMIN RPCs hold FOR KEY SHARE of their endpoints, so a delete waits for
--   them and its cancel sees what they created; the claim stays the last line);
-- - PostgREST no longer embeds webhooks in webhook_deliveries (nothing in the client did;
--   the portal looks endpoints up by id and says "(endpoint deleted)" for one it lacks).
-- What still keeps a delivery's endpoint honest: deliveries are created only by
-- private.insert_deliveries, which joins public.webhooks, under those locks.
-- Test: supabase/tests/outbox/deleting-an-endpoint-leaves-its-log.test.sql.
alter table public.webhook_deliveries drop constraint webhook_deliveries_webhook_id_fkey;
comment on column public.webhook_deliveries.webhook_id is
  'The endpoint the delivery goes to. After the endpoint is deleted it keeps that id, which no endpoint has; null for endpoints deleted before 20261130120000.';

create or replace function public.redeliver_webhook_delivery(delivery_id uuid)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  original public.webhook_deliveries;
  target public.webhooks;
  delivery uuid;
begin
  select * into original from public.webhook_deliveries d where d.id = redeliver_webhook_delivery.delivery_id;
  if original.id is null or private.can_manage_company(original.company_id) is not true then
    raise exception 'delivery % does not exist or you are not an active ADMIN of its company', delivery_id
      using errcode = '42501';
  end if;
  if original.webhook_id is null or not exists (select 1 from public.webhooks w where w.id = original.webhook_id) then
    raise exception 'the endpoint of delivery % was deleted', delivery_id using errcode = '55000';
  end if;
  target := private.managed_webhook(original.webhook_id);
  perform private.require_active(target);

  select private.insert_deliveries(original.company_id, array[original.event_id], array[ev.ordering_key],
                                   array[original.webhook_id], original.id)
    into delivery
    from public.webhook_events ev
   where ev.id = original.event_id;
  return delivery;
end;
$$;

-- The claim, unchanged but for the cancel of deliveries whose endpoint is gone (above).
-- Generic plans for the session, as 20261129150200 set.
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
  with gone as (
    delete from private.webhook_endpoint_signals s
     where s.webhook_id = any (candidates)
       and (s.webhook_id = any (coalesce(picked, '{}'))
            or not exists (select 1 from private.webhook_endpoints e where e.webhook_id = s.webhook_id))
    returning s.webhook_id
  )
  select array_agg(distinct g.webhook_id) into orphans
    from gone g
   where not g.webhook_id = any (coalesce(picked, '{}'));
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

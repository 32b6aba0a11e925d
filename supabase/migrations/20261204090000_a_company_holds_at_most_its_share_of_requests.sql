-- A company holds at most its share of the requests in flight, across all dispatchers.
--
-- Each endpoint's requests in flight are capped (its concurrency, 10 to start with), and an
-- endpoint that never answers keeps its 10 until its requests time out; its circuit opens
-- after circuit_failure_threshold of them. A dispatcher has WEBHOOK_CONCURRENCY sockets
-- (500). Nothing bounded a company's endpoints together: one tenant with 50 endpoints on a
-- receiver that hangs (an ERP gateway down, or a tenant pointing webhooks at a tarpit)
-- held all 500 sockets of a dispatcher for a whole timeout, and every other tenant's
-- deliveries waited behind them; a disable and enable gives every endpoint a fresh start,
-- so it could be done again and again.
--
-- Now private.webhook_settings.company_concurrency (200 by default) is the most requests
-- in flight of one company's endpoints together, counted as the endpoints' caps are: the
-- company's unexpired leases, whoever holds them (private.company_in_flight, on a partial
-- index of the leased deliveries by company). A claim takes no more of a company's
-- deliveries than it has left, counted once per company per claim under a transaction
-- lock of the company (an advisory lock taken with pg_try_: a company another claim has
-- in hand is skipped, its endpoints keep their place). An endpoint with due
-- work that gets nothing because its company is at its share waits in
-- private.webhook_company_waiters, off the schedule until the company's earliest lease runs
-- out; a record or a release that frees slots of the company makes that many of its waiting
-- endpoints ready again, longest waiting first, at the place in line they had. So a
-- company's waiting endpoints cost claims nothing, however many there are, and a freed
-- slot is not missed: a record or a release frees a company's slots only under the lock a
-- claim counts them under (private.lock_endpoints_companies, again without waiting), so it
-- never frees one while a claim is turning an endpoint away for the want of it (the
-- endpoint's waiting row, not committed yet, would not be woken). The results of a company
-- whose lock a claim holds are kept like those of an endpoint someone holds
-- (private.webhook_deferred_results, 20261203090000) and recorded by the next claim; a
-- release leaves its leases to run out. The waiters' endpoint rows are taken with SKIP
-- LOCKED (one someone holds stays waiting, until the next freed slot or its fallback).
--
-- claim_due_deliveries is as 20261203090000 left it but for the company's share;
-- record_delivery_results, release_deliveries and record_deferred_results as it left them
-- but for the company's lock and the wake-up.
-- Tests: supabase/tests/scheduling/company-share-of-requests.test.sql; end to end, "a
-- company's many dead endpoints" in supabase/functions/webhook-dispatcher/isolation_test.ts.

alter table private.webhook_settings
  add column company_concurrency integer not null default 200,
  add constraint webhook_settings_company_concurrency_range check (company_concurrency between 1 and 100000);
comment on column private.webhook_settings.company_concurrency is
  'Most requests in flight of one company''s endpoints together, all dispatchers counted (20261204090000).';

-- Only leased rows are in it: a claim adds the entry, and the record's new row version has none.
create index webhook_deliveries_company_leased_idx on public.webhook_deliveries (company_id, lease_expires_at)
  where state = 'pending' and lease_owner is not null;

create table private.webhook_company_waiters (
  webhook_id uuid primary key references private.webhook_endpoints (webhook_id) on delete cascade,
  company_id uuid not null,
  -- Its place in line when it was turned away: it gets it back when woken.
  since      timestamptz not null
);
comment on table private.webhook_company_waiters is
  'Endpoints with due work that a claim turned away because their company had its share of requests in flight (company_concurrency); a freed slot of the company wakes them, longest waiting first (20261204090000).';
create index webhook_company_waiters_company_idx on private.webhook_company_waiters (company_id, since, webhook_id);
alter table private.webhook_company_waiters enable row level security;
revoke all on private.webhook_company_waiters from anon, authenticated;

create function private.company_lock_class()
returns integer
language plpgsql
stable
set search_path = ''
as $$
begin
  -- The first key of a company's claim lock (pg_try_advisory_xact_lock(integer, integer),
  -- the second key its id's hash): a key space of its own, which an application's
  -- single-bigint advisory locks never meet.
  return 'private.webhook_company_waiters'::regclass::oid::integer;
end;
$$;
revoke all on function private.company_lock_class() from public;

create function private.company_in_flight(company_id uuid)
returns integer
language plpgsql
stable
set search_path = ''
as $$
begin
  return (select count(*)::integer
            from public.webhook_deliveries d
           where d.company_id = company_in_flight.company_id
             and d.state = 'pending'
             and d.lease_owner is not null
             and d.lease_expires_at > now());
end;
$$;
comment on function private.company_in_flight(uuid) is
  'Requests in flight of the company''s endpoints: its unexpired leases, whichever dispatcher holds them.';
revoke all on function private.company_in_flight(uuid) from public;

create function private.wake_company_waiters(freed jsonb)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  woken uuid[];
  since timestamptz[];
begin
  -- freed: [{"company_id": ..., "slots": n}]. Per company, its n longest-waiting endpoints
  -- whose rows nobody else holds.
  select array_agg(x.webhook_id), array_agg(x.since) into woken, since
    from jsonb_to_recordset(freed) f(company_id uuid, slots integer)
   cross join lateral (select w.webhook_id, w.since
                         from private.webhook_company_waiters w
                         join private.webhook_endpoints e on e.webhook_id = w.webhook_id
                        where w.company_id = f.company_id
                        order by w.since, w.webhook_id
                        limit greatest(f.slots, 0)
                          for update of e skip locked) x;
  if woken is null then
    return 0;
  end if;
  delete from private.webhook_company_waiters w where w.webhook_id = any (woken);
  update private.webhook_endpoints e
     set ready_at = least(coalesce(e.ready_at, s.since), s.since)
    from unnest(woken, since) s(webhook_id, since)
   where e.webhook_id = s.webhook_id;
  return cardinality(woken);
end;
$$;
comment on function private.wake_company_waiters(jsonb) is
  'Slots of companies freed ([{company_id, slots}]): that many of each company''s waiting endpoints are ready again, at the place in line they had.';
revoke all on function private.wake_company_waiters(jsonb) from public;

create function private.lock_endpoints_companies(endpoints uuid[])
returns uuid[]
language plpgsql
volatile
set search_path = ''
as $$
begin
  -- The lock a claim holds while it counts a company's slots and turns its endpoints away
  -- (claim_due_deliveries), taken here without waiting: of the endpoints given, those
  -- whose company's lock this transaction now holds. A record or a release frees slots
  -- only under it, so it never frees one while a claim is turning an endpoint away for the
  -- want of it (the endpoint would not be woken: its waiting row is not committed yet).
  return array(select e.webhook_id
                 from private.webhook_endpoints e
                where e.webhook_id = any (endpoints)
                  and e.company_id in (select c.company_id
                                         from (select distinct x.company_id
                                                 from private.webhook_endpoints x
                                                where x.webhook_id = any (endpoints)
                                                offset 0) c
                                        where pg_catalog.pg_try_advisory_xact_lock(private.company_lock_class(),
                                                                                   pg_catalog.hashtext(c.company_id::text)))
                order by e.webhook_id);
end;
$$;
comment on function private.lock_endpoints_companies(uuid[]) is
  'Of the endpoints given, those whose company''s claim lock this transaction holds, taken without waiting (20261204090000).';
revoke all on function private.lock_endpoints_companies(uuid[]) from public;

create or replace function private.record_deferred_results()
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  endpoints uuid[];
  free uuid[];
  batch record;
  recorded integer := 0;
begin
  -- The endpoints with results kept, at most 50, one index probe each (a loose scan of the
  -- primary key); none kept: one probe.
  endpoints := array(
    with recursive w(webhook_id) as (
      (select k.webhook_id from private.webhook_deferred_results k order by k.webhook_id limit 1)
      union all
      select (select k.webhook_id
                from private.webhook_deferred_results k
               where k.webhook_id > w.webhook_id
               order by k.webhook_id
               limit 1)
        from w
       where w.webhook_id is not null
    )
    select w.webhook_id from w where w.webhook_id is not null limit 50);
  if cardinality(endpoints) = 0 then
    return 0;
  end if;
  -- Those whose row nobody else holds now (locked here, in id order, SKIP LOCKED) and whose
  -- company no claim has in hand (20261204090000), and those deleted meanwhile (no row to
  -- hold).
  free := private.lock_endpoints_companies(array(
            select e.webhook_id
              from private.webhook_endpoints e
             where e.webhook_id = any (endpoints)
             order by e.webhook_id
               for update skip locked))
       || array(select x.webhook_id
                  from unnest(endpoints) x(webhook_id)
                 where not exists (select 1 from private.webhook_endpoints e where e.webhook_id = x.webhook_id));
  -- Recorded as the worker that sent them, in the order they were kept.
  for batch in
    with taken as (
      delete from private.webhook_deferred_results k
       where (k.webhook_id, k.delivery_id, k.attempt_number, k.worker) in
             (select t.webhook_id, t.delivery_id, t.attempt_number, t.worker
                from private.webhook_deferred_results t
               where t.webhook_id = any (free)
                 for update skip locked)
      returning k.worker, k.disable_after, k.result, k.deferred_at, k.delivery_id
    )
    select t.worker, t.disable_after, jsonb_agg(t.result order by t.deferred_at, t.delivery_id) as results
      from taken t
     group by t.worker, t.disable_after
  loop
    recorded := recorded + private.record_delivery_results(batch.worker, batch.results, batch.disable_after);
  end loop;
  return recorded;
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
  wanted uuid[];    -- the endpoints of the results' deliveries
  held uuid[];      -- those whose rows this record holds
  deferred uuid[];  -- deliveries whose results wait for their endpoint's row
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

  -- The statements from here to the attempts' insert reach every delivery by its key,
  -- whatever the statistics when they are planned (see the top of 20261130190000).
  seqscan_was := pg_catalog.current_setting('enable_seqscan');
  perform pg_catalog.set_config('enable_seqscan', 'off', true);

  -- Lock order: the endpoints' rows (in id order), then their deliveries; as claims,
  -- releases and cancels do. Never the webhooks rows: those are the ADMINs'. SKIP LOCKED:
  -- the results of an endpoint whose row someone else holds (an ADMIN's or a backend's
  -- uncommitted change to it, a delete, another dispatcher's claim) are kept for later in
  -- private.webhook_deferred_results, and the others are recorded now (see the top of
  -- 20261203090000). A result whose delivery has no endpoint row (deleted) needs none.
  wanted := array(select distinct d.webhook_id
                    from public.webhook_deliveries d
                   where d.id = any (ids)
                     and d.webhook_id is not null);
  held := array(select e.webhook_id
                  from private.webhook_endpoints e
                 where e.webhook_id = any (wanted)
                 order by e.webhook_id
                   for update skip locked);
  held := private.lock_endpoints_companies(held);
  if cardinality(held) < cardinality(wanted) then  -- held by someone else, or deleted
    with waiting as (
      select r.value as result, (r.value ->> 'delivery_id')::uuid as delivery_id,
             (r.value ->> 'attempt_number')::integer as attempt_number, d.webhook_id
        from jsonb_array_elements(results) r(value)
        join public.webhook_deliveries d on d.id = (r.value ->> 'delivery_id')::uuid
       where d.id = any (ids)
         and not d.webhook_id = any (held)
         and exists (select 1 from private.webhook_endpoints e where e.webhook_id = d.webhook_id)
    ), kept as (
      -- Once per result: the same result written again while it waits is one row.
      insert into private.webhook_deferred_results as k
             (webhook_id, delivery_id, attempt_number, worker, result, disable_after)
      select w.webhook_id, w.delivery_id, w.attempt_number, worker, w.result, disable_after
        from waiting w
      on conflict on constraint webhook_deferred_results_pkey do nothing
    )
    select array_agg(w.delivery_id) into deferred from waiting w;
  end if;
  if deferred is not null then
    results := coalesce((select jsonb_agg(r.value order by r.position)
                           from jsonb_array_elements(results) with ordinality r(value, position)
                          where not (r.value ->> 'delivery_id')::uuid = any (deferred)), '[]');
    ids := array(select (r ->> 'delivery_id')::uuid from jsonb_array_elements(results) r);
  end if;

  -- Every attempt is logged, even one whose lease was lost meanwhile: it happened. Once: a
  -- result whose lease is not held may be this worker's own, written again after a
  -- connection lost the answer to the first write (20261201090500).
  insert into public.webhook_delivery_attempts
         (delivery_id, company_id, attempt_number, outcome, status, duration_ms, response_body, error, worker)
  select r.delivery_id, d.company_id, r.attempt_number, r.outcome, r.status, r.duration_ms,
         left(r.response_body, 4096), left(r.error, 2000), worker
    from jsonb_to_recordset(results) as r(delivery_id uuid, attempt_number integer, outcome public.webhook_attempt_outcome,
                                           status integer, duration_ms integer, response_body text,
                                           error text)
    join public.webhook_deliveries d on d.id = r.delivery_id
   where d.id = any (ids)
     and (   (d.state = 'pending' and d.lease_owner = worker and d.attempt_count = r.attempt_number)
          or not exists (select 1
                           from public.webhook_delivery_attempts a
                          where a.delivery_id = r.delivery_id
                            and a.attempt_number = r.attempt_number
                            and a.worker = record_delivery_results.worker));
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
           last_error       = left(r.error, 2000),
           updated_at       = now()  -- set here, the row trigger stays out (20261202090300)
      from r
     where d.id = r.delivery_id
       and d.id = any (ids)
       and d.state = 'pending'
       and d.lease_owner = worker
       and d.attempt_count = r.attempt_number
    returning d.webhook_id, d.company_id, d.ordering_key, d.state, r.outcome, r.status, left(r.error, 2000) as error,
              coalesce(r.gone, false) as gone, r.position, d.last_attempt_at as claimed_at
  )
  select count(*)::integer, coalesce(jsonb_agg(to_jsonb(m) order by m.position), '[]')
    into applied, moved
    from moved_rows m;

  -- Ordered keys whose delivery ended, or waits on a retry: the earliest pending one of the
  -- key goes next, if it was parked (behind this one: the next one; or, when this one is
  -- to be retried, one with an earlier number whose transaction committed after this one was
  -- sent, which goes first now rather than after this one's retry; 20261201090200).
  if moved @? '$[*] ? (@.ordering_key != null)' then
  update public.webhook_deliveries d
     set next_attempt_at = now()
   where d.id in (select distinct on (n.webhook_id, n.ordering_key) n.id
                    from public.webhook_deliveries n
                    join (select distinct (m ->> 'webhook_id')::uuid as webhook_id, m ->> 'ordering_key' as ordering_key
                            from jsonb_array_elements(moved) m
                           where m ->> 'ordering_key' is not null) ended
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

  -- Freed slots (and promoted keys) make the endpoints ready again: from now, as a claim
  -- that served them leaves them, behind every endpoint and new delivery ready before
  -- (20261201090400).
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, true)
   where e.webhook_id in (select distinct (m ->> 'webhook_id')::uuid from jsonb_array_elements(moved) m);

  -- The slots it freed are their companies' too: as many of each company's endpoints that
  -- wait for its share are ready again, ahead of these (20261204090000).
  if applied > 0 and exists (select 1 from private.webhook_company_waiters) then
    perform private.wake_company_waiters((select jsonb_agg(jsonb_build_object('company_id', c.company_id, 'slots', c.slots))
                                            from (select (m ->> 'company_id')::uuid as company_id, count(*) as slots
                                                    from jsonb_array_elements(moved) m
                                                   group by 1) c));
  end if;

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

create or replace function private.release_deliveries(worker text, delivery_ids uuid[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  released integer;
  held uuid[];
  freed jsonb;
begin
  if worker is null or btrim(worker) = '' then
    raise exception 'worker must name the dispatcher that holds the leases' using errcode = '22023';
  end if;
  if delivery_ids is null then
    raise exception 'delivery_ids must be an array of delivery ids (empty releases nothing)' using errcode = '22023';
  end if;
  -- SKIP LOCKED (see the top): a delivery of an endpoint whose row someone else holds keeps
  -- its lease, which runs out; one whose endpoint is gone needs no row.
  held := private.lock_endpoints_companies(array(
            select e.webhook_id
              from private.webhook_endpoints e
             where e.webhook_id in (select d.webhook_id from public.webhook_deliveries d where d.id = any (delivery_ids))
             order by e.webhook_id
               for update skip locked));
  -- Graceful shutdown: the attempts never started, so they are not counted.
  with released_rows as (
    update public.webhook_deliveries d
       set next_attempt_at  = now(),
           lease_owner      = null,
           lease_expires_at = null,
           attempt_count    = d.attempt_count - 1
     where d.id = any (delivery_ids)
       and d.state = 'pending'
       and d.lease_owner = worker
       and (d.webhook_id = any (held)
            or not exists (select 1 from private.webhook_endpoints e where e.webhook_id = d.webhook_id))
    returning d.company_id
  ), per_company as (
    select r.company_id, count(*) as slots from released_rows r group by 1
  )
  select coalesce(sum(c.slots), 0)::integer, jsonb_agg(jsonb_build_object('company_id', c.company_id, 'slots', c.slots))
    into released, freed
    from per_company c;
  -- Their companies' slots are free too (20261204090000).
  if released > 0 and exists (select 1 from private.webhook_company_waiters) then
    perform private.wake_company_waiters(freed);
  end if;
  -- Served: the claim that leased them had its turn (20261202090100).
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, true)
   where e.webhook_id = any (held);
  return released;
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
  company_cap integer;      -- company_concurrency
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
  company_cap := (select s.company_concurrency from private.webhook_settings s);

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
      -- Its company's share (20261204090000): counted once per company per claim, under a
      -- lock of the company that this claim holds until it commits, so that two claims
      -- never count the same slots; then kept here as this claim leases. A company another
      -- claim has in hand is skipped (null: it keeps its place), never waited for. Turned
      -- away with due work by its company's share, an endpoint waits for a freed slot.
      company_at := array_position(companies, endpoint.company_id);
      if company_at is null then
        companies := companies || endpoint.company_id;
        company_free := company_free
                        || case when pg_catalog.pg_try_advisory_xact_lock(private.company_lock_class(),
                                                                            pg_catalog.hashtext(endpoint.company_id::text))
                                then company_cap - private.company_in_flight(endpoint.company_id) end;
        company_at := cardinality(companies);
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

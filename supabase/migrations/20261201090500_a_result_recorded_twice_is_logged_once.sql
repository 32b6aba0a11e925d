-- A result recorded twice is logged once.
--
-- The dispatcher writes its results with one call (record_and_claim). When the connection
-- drops after Postgres committed that call but before its answer arrived, the dispatcher
-- cannot tell that the write went through: it writes the same results again, one by one
-- (pg_store.ts). The deliveries are right (the second write holds no lease, so it moves
-- nothing), but every attempt of the batch was logged a second time: an ADMIN saw each
-- request twice in the attempt log, and attempt counts in the portal were off.
--
-- Now a result whose lease is not held (the second write, or a late answer from a
-- dispatcher that lost its lease) is logged only if that dispatcher has not logged that
-- attempt of that delivery already. A late answer is still logged once: it happened. The
-- results of the lease holder, i.e. every result of a normal write, skip the check.
-- Tests: supabase/tests/dispatcher/record-twice-logs-once.test.sql.

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

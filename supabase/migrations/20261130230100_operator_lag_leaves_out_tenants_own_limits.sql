-- An endpoint held back by its ADMIN's own rate or cap is not operator lag.
--
-- public.webhook_health's lag_seconds (and due_deliveries, endpoints_with_due_work) counted
-- the backlog of an endpoint whose ADMIN limited it (max_requests_per_second, since
-- 20261130220000; max_concurrent_requests, since 20261130200000). One tenant limiting its
-- ERP to 2 requests a second with a day's backlog then raised the operators' "deliveries
-- are late" alert for every tenant, with nothing for them to do: the tenant chose that
-- wait, and its ADMIN sees those deliveries pending in their log. Such an endpoint is left
-- out while the scheduler's own rule (private.endpoint_ready_at) makes it wait, and would
-- not without its ADMIN's rate and cap: private.endpoint_held_back_by_its_admin. The
-- deployment's cap (endpoint_concurrency) and what an endpoint has earned still count: a
-- slow receiver at them makes deliveries late, as before. The rest as 20261130180000.
-- Test: supabase/tests/outbox/health-for-operators.test.sql.

-- PL/pgSQL, not SQL: a SQL function that sets search_path is planned again at every call
-- (20261130160000).
create function private.endpoint_held_back_by_its_admin(endpoint private.webhook_endpoints)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
  unlimited private.webhook_endpoints := endpoint;
begin
  if endpoint.max_requests_per_second is null and endpoint.max_concurrent_requests is null then
    return false;
  end if;
  unlimited.max_requests_per_second := null;
  unlimited.max_concurrent_requests := null;
  return coalesce(private.endpoint_ready_at(endpoint, false) > now()
                  and private.endpoint_ready_at(unlimited, false) <= now(), false);
end;
$$;
comment on function private.endpoint_held_back_by_its_admin(private.webhook_endpoints) is
  'True when the endpoint must wait (private.endpoint_ready_at) only because of its ADMIN''s own rate or cap: without them it would be ready now.';
revoke execute on function private.endpoint_held_back_by_its_admin(private.webhook_endpoints) from public;

create or replace function private.webhook_health()
returns table (
  checked_at                    timestamptz,
  lag_seconds                   double precision,
  oldest_due_at                 timestamptz,
  oldest_due_webhook_id         uuid,
  endpoints_with_due_work       bigint,
  due_deliveries                bigint,
  in_flight_deliveries          bigint,
  pending_deliveries_estimate   bigint,
  scheduled_deliveries_estimate bigint,
  endpoints_healthy             bigint,
  endpoints_failing             bigint,
  endpoints_circuit_open        bigint,
  endpoints_disabled            bigint,
  signals                       bigint,
  oldest_signal_age_seconds     double precision,
  dispatcher_awake              boolean,
  dispatcher_heartbeat_at       timestamptz,
  last_wakeup_requested_at      timestamptz,
  wakeup_failures               bigint,
  last_wakeup_failure_at        timestamptz,
  last_wakeup_failure           text
)
language plpgsql
security definer
set search_path = ''
as $_$
declare
  -- Counts of rows stop here: past it an operator needs to act, not an exact figure.
  count_limit constant integer := 10000;
begin
  checked_at := now();

  -- Due work that waits for a dispatcher: pending deliveries whose next_attempt_at has
  -- come, of active endpoints whose circuit is closed and whose ADMIN's own rate or cap does
  -- not hold them back. Not lag: deliveries held by an open
  -- circuit (counted by endpoint state below), parked behind an earlier delivery of their
  -- ordering key ('infinity'), scheduled for a later retry, or in flight (their
  -- next_attempt_at is the lease's end; an expired lease is due again, and lag).
  --
  -- Such an endpoint is always one a claim would look at: its ready_at has come, or a
  -- signal announces new deliveries, or it has leases (at its cap, ready_at is the first
  -- lease's end). The lag visits only those, each with one probe of the pending index:
  -- its cost follows the endpoints with due work, never the endpoints waiting on later
  -- retries nor the number of pending rows. Signals and leases are read as distinct
  -- endpoints by skip scans of their indexes.
  with recursive signalled(webhook_id) as (
    (select s.webhook_id from private.webhook_endpoint_signals s order by s.webhook_id limit 1)
    union all
    select (select s.webhook_id
              from private.webhook_endpoint_signals s
             where s.webhook_id > g.webhook_id
             order by s.webhook_id
             limit 1)
      from signalled g
     where g.webhook_id is not null
  ), leased(webhook_id) as (
    (select d.webhook_id
       from public.webhook_deliveries d
      where d.state = 'pending' and d.lease_owner is not null and d.webhook_id is not null
      order by d.webhook_id
      limit 1)
    union all
    select (select d.webhook_id
              from public.webhook_deliveries d
             where d.state = 'pending' and d.lease_owner is not null and d.webhook_id > l.webhook_id
             order by d.webhook_id
             limit 1)
      from leased l
     where l.webhook_id is not null
  ), candidates as (
    select e.webhook_id from private.webhook_endpoints e where e.ready_at <= now()
    union
    select g.webhook_id from signalled g where g.webhook_id is not null
    union
    select l.webhook_id from leased l where l.webhook_id is not null
  ), serving as (
    select c.webhook_id
      from candidates c
      join private.webhook_endpoints e on e.webhook_id = c.webhook_id
      join public.webhooks w on w.id = c.webhook_id
     where w.is_active
       and e.circuit_opened_at is null
       -- The tenant chose that wait (its ADMIN sees the deliveries pending): not lag.
       and not private.endpoint_held_back_by_its_admin(e)
  ), oldest as (
    select s.webhook_id, o.next_attempt_at
      from serving s
      cross join lateral (select d.next_attempt_at
                            from public.webhook_deliveries d
                           where d.webhook_id = s.webhook_id
                             and d.state = 'pending'
                             and d.next_attempt_at <= now()
                           order by d.next_attempt_at
                           limit 1) o
  )
  select (select o.next_attempt_at from oldest o order by o.next_attempt_at, o.webhook_id limit 1),
         (select o.webhook_id from oldest o order by o.next_attempt_at, o.webhook_id limit 1),
         (select count(*) from oldest),
         (select count(*)
            from (select 1
                    from serving s
                    cross join lateral (select 1
                                          from public.webhook_deliveries d
                                         where d.webhook_id = s.webhook_id
                                           and d.state = 'pending'
                                           and d.next_attempt_at <= now()
                                         -- ordered: the pending index, never a heap scan
                                         order by d.next_attempt_at
                                         limit count_limit) x
                   limit count_limit) due)
    into oldest_due_at, oldest_due_webhook_id, endpoints_with_due_work, due_deliveries;
  lag_seconds := coalesce(extract(epoch from now() - oldest_due_at)::double precision, 0);

  -- Requests in flight: unexpired leases (bounded by the dispatchers' caps).
  select count(*) into in_flight_deliveries
    from public.webhook_deliveries d
   where d.state = 'pending' and d.lease_owner is not null and d.lease_expires_at > now();

  -- Pending rows as the last (auto)vacuum or ANALYZE counted them in the pending index: an
  -- estimate, which is all a trend needs. Scheduled = the pending that are neither due nor
  -- in flight (retries waiting, ordered deliveries parked, deliveries behind open circuits).
  select greatest(c.reltuples, 0)::bigint into pending_deliveries_estimate
    from pg_catalog.pg_class c
   where c.oid = 'public.webhook_deliveries_pending_by_webhook_idx'::regclass;
  scheduled_deliveries_estimate := greatest(pending_deliveries_estimate - due_deliveries - in_flight_deliveries, 0);

  -- Endpoints by state, with the rule ADMINs see (public.webhook_endpoint_health).
  select count(*) filter (where h.state = 'healthy'),
         count(*) filter (where h.state = 'failing'),
         count(*) filter (where h.state = 'circuit_open'),
         count(*) filter (where h.state = 'disabled')
    into endpoints_healthy, endpoints_failing, endpoints_circuit_open, endpoints_disabled
    from public.webhook_endpoint_health h;

  -- Signals: new deliveries no claim has looked at yet. Every claim consumes them, so an old
  -- one means no dispatcher is claiming.
  select count(*) into signals
    from (select 1 from private.webhook_endpoint_signals s limit count_limit) x;
  select extract(epoch from now() - s.created_at)::double precision into oldest_signal_age_seconds
    from private.webhook_endpoint_signals s
   order by s.id
   limit 1;
  oldest_signal_age_seconds := coalesce(oldest_signal_age_seconds, 0);

  dispatcher_awake := private.dispatcher_is_awake();
  select case when h.last_value > 0 then pg_catalog.to_timestamp(h.last_value / 1000.0) end
    into dispatcher_heartbeat_at
    from private.webhook_dispatcher_heartbeat h;

  -- The last pg_net wake-up the database asked for (private.claim_wakeup_slot's stamp).
  select case when r.last_value > 0 then pg_catalog.to_timestamp(r.last_value / 1000.0) end
    into last_wakeup_requested_at
    from private.webhook_wakeup_requested r;

  -- Wake-ups that did not work, where pg_net exists (null where it does not): responses of
  -- the last hour that are not 2xx, timed out or never came. pg_net keeps responses 6 hours
  -- and does not record their URL, so other pg_net calls of the database count here too.
  -- Dynamic SQL, as in private.wake_dispatcher: plain Postgres has no net schema.
  if to_regclass('net._http_response') is not null then
    execute format(
      $sql$
      select count(*),
             max(r.created),
             (array_agg(case when coalesce(r.timed_out, false) then 'timed out' || coalesce(': ' || r.error_msg, '')
                             when r.status_code is null then coalesce(r.error_msg, 'no answer')
                             else 'HTTP ' || r.status_code || coalesce(': ' || left(r.content, 200), '')
                        end
                        order by r.created desc, r.id desc))[1]
        from %I.%I r
       where r.created > now() - interval '1 hour'
         and (r.status_code is null or r.status_code not between 200 and 299)
      $sql$, 'net', '_http_response')
      into wakeup_failures, last_wakeup_failure_at, last_wakeup_failure;
  end if;

  return next;
end;
$_$;

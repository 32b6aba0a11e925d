-- Operators see the results a record kept because someone held their endpoint's row.
--
-- Since 20261203090000 a record keeps the results of an endpoint whose row another
-- transaction holds (private.webhook_deferred_results), and the first claim after that
-- transaction ends records them. Until then the endpoint's deliveries stay in flight and
-- their attempts are not in the log. A hold of milliseconds (an ADMIN's edit through the
-- API, another dispatcher's claim) is routine; one of minutes is a session left open in a
-- transaction after changing a webhook, and the operator is the one who can end it. The view
-- now says it:
-- - results_waiting_for_held_endpoints: attempt results kept;
-- - oldest_waiting_result_age_seconds: how long the oldest has been kept (0 when none).
-- Columns of a function of their own added at the view's end, as in 20261130180000, so
-- private.webhook_health() and what selects the earlier columns see no change. /metrics
-- reads the same function (webhook_results_waiting, webhook_result_wait_age_seconds).
-- Test: supabase/tests/outbox/health-for-operators.test.sql ("Results kept for held
-- endpoints").

create function private.webhook_results_waiting()
returns table (results_waiting_for_held_endpoints bigint, oldest_waiting_result_age_seconds double precision)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  -- Few rows, ever: results of requests that were in flight when the hold began.
  select count(*), coalesce(max(extract(epoch from now() - k.deferred_at)::double precision), 0)
    into results_waiting_for_held_endpoints, oldest_waiting_result_age_seconds
    from private.webhook_deferred_results k;
  return next;
end;
$$;
comment on function private.webhook_results_waiting() is
  'Attempt results kept because another transaction held their endpoint''s row (private.webhook_deferred_results), and the age of the oldest. For public.webhook_health and /metrics.';
revoke all on function private.webhook_results_waiting() from public;
grant execute on function private.webhook_results_waiting() to service_role;

create or replace view public.webhook_health
  with (security_invoker = true)
as
select h.*, l.dispatcher_listening, l.listener_heartbeat_at,
       c.cancellations_in_progress, c.oldest_cancellation_age_seconds, c.deliveries_being_cancelled,
       r.results_waiting_for_held_endpoints, r.oldest_waiting_result_age_seconds
  from private.webhook_health() h
  cross join private.dispatcher_listener() l
  cross join private.webhook_cancellations_in_progress() c
  cross join private.webhook_results_waiting() r;
comment on column public.webhook_health.results_waiting_for_held_endpoints is
  'Attempt results a record kept because another transaction held their endpoint''s row: recorded by the first claim after it ends; their deliveries stay in flight until then.';
comment on column public.webhook_health.oldest_waiting_result_age_seconds is
  'How long the oldest kept result has waited; 0 when none. Minutes: a session holds an endpoint (pg_stat_activity, idle in transaction).';

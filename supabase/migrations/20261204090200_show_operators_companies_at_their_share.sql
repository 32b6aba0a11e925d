-- Operators see the companies held to their share of requests, and the endpoints waiting.
--
-- Since 20261204090000 a company's endpoints together have at most company_concurrency
-- requests in flight; an endpoint with due work turned away for it waits in
-- private.webhook_company_waiters until a slot of its company frees. That is by design (one
-- tenant's dead endpoints must not take every socket), but a company that stays at its
-- share is worth a look (its endpoints hang, or the share is too small for a big tenant),
-- and its waiting deliveries count in lag_seconds like any due delivery. The view says it:
-- - companies_at_share: companies with an endpoint waiting for a slot (and deliveries due);
-- - endpoints_waiting_for_company_share: those endpoints.
-- Columns of a function of their own added at the view's end, as in 20261203090100.
-- /metrics reads the same function (webhook_companies_at_share,
-- webhook_endpoints_waiting_for_company_share).
-- Test: supabase/tests/outbox/health-for-operators.test.sql ("Companies at their share").

create function private.webhook_company_shares()
returns table (companies_at_share bigint, endpoints_waiting_for_company_share bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  -- Few rows, ever: at most the endpoints of companies at their share. A waiting row whose
  -- endpoint has nothing due any more (cancelled meanwhile) is not counted.
  select count(distinct w.company_id), count(*)
    into companies_at_share, endpoints_waiting_for_company_share
    from private.webhook_company_waiters w
   where exists (select 1
                   from public.webhook_deliveries d
                  where d.webhook_id = w.webhook_id
                    and d.state = 'pending'
                    and d.next_attempt_at <= now());
  return next;
end;
$$;
comment on function private.webhook_company_shares() is
  'Companies with an endpoint waiting for a slot of their share of requests (company_concurrency), and those endpoints. For public.webhook_health and /metrics.';
revoke all on function private.webhook_company_shares() from public;
grant execute on function private.webhook_company_shares() to service_role;

create or replace view public.webhook_health
  with (security_invoker = true)
as
select h.*, l.dispatcher_listening, l.listener_heartbeat_at,
       c.cancellations_in_progress, c.oldest_cancellation_age_seconds, c.deliveries_being_cancelled,
       r.results_waiting_for_held_endpoints, r.oldest_waiting_result_age_seconds,
       s.companies_at_share, s.endpoints_waiting_for_company_share
  from private.webhook_health() h
  cross join private.dispatcher_listener() l
  cross join private.webhook_cancellations_in_progress() c
  cross join private.webhook_results_waiting() r
  cross join private.webhook_company_shares() s;
comment on column public.webhook_health.companies_at_share is
  'Companies with an endpoint whose due deliveries wait for a slot of the company''s share of requests in flight (company_concurrency).';
comment on column public.webhook_health.endpoints_waiting_for_company_share is
  'Endpoints whose due deliveries wait for a slot of their company''s share; their deliveries count in lag_seconds.';

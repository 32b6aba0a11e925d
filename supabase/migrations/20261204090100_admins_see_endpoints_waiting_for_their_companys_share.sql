-- ADMINs see when an endpoint waits for their company's share of requests:
-- public.webhook_endpoint_health.waiting_for_company_share.
--
-- Since 20261204090000 a company's endpoints together have at most company_concurrency
-- requests in flight, so one of a company's endpoints that hangs can hold back another of
-- the same company: its deliveries are due and wait for a freed slot of the company. Its
-- state says "healthy", and its ADMIN could not tell that wait from a slow system. The
-- column says it: true while the endpoint has deliveries due and waits in
-- private.webhook_company_waiters (private.endpoint_waits_for_company_share). The portal
-- shows it under the endpoint's limits, as it does held_back_by_own_limits.
--
-- As held_back_by_own_limits (20261130230300): the view stays security_invoker, and the
-- function it calls is security definer and answers only a caller who may manage the
-- endpoint's company (or a session that has not switched to an API role); anyone else gets
-- null, whichever id they pass. It is one more private function authenticated may execute
-- (supabase/tests/schema/private-functions-closed.test.sql). The column is added at the
-- view's end, so what selects the earlier columns sees no change.
-- Tests: supabase/tests/scheduling/endpoint-health-view.test.sql;
-- tests/frontend/health-and-ordering-client.test.ts; the portal's
-- tests/portal/health-and-order.test.ts.

create function private.endpoint_waits_for_company_share(webhook_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  company uuid;
begin
  select e.company_id into company from private.webhook_endpoints e where e.webhook_id = endpoint_waits_for_company_share.webhook_id;
  if not found
     or not (private.can_manage_company(company) or pg_catalog.current_setting('role') = 'none') then
    return null;
  end if;
  return exists (select 1 from private.webhook_company_waiters w where w.webhook_id = endpoint_waits_for_company_share.webhook_id)
     and exists (select 1
                   from public.webhook_deliveries d
                  where d.webhook_id = endpoint_waits_for_company_share.webhook_id
                    and d.state = 'pending'
                    and d.next_attempt_at <= now());
end;
$$;
comment on function private.endpoint_waits_for_company_share(uuid) is
  'True while the endpoint has deliveries due that wait for a freed slot of its company''s share (company_concurrency); answered only to who may manage its company (or a session that has not switched to an API role), null for anyone else. Computed by public.webhook_endpoint_health.';
revoke execute on function private.endpoint_waits_for_company_share(uuid) from public;
grant execute on function private.endpoint_waits_for_company_share(uuid) to authenticated, service_role;

create or replace view public.webhook_endpoint_health
  with (security_invoker = true)
as
select e.webhook_id,
       e.company_id,
       case when not w.is_active then 'disabled'
            when e.circuit_opened_at is not null then 'circuit_open'
            when e.failing_since is not null then 'failing'
            else 'healthy'
       end as state,
       e.consecutive_failures,
       e.failing_since,
       e.circuit_opened_at,
       e.next_probe_at,
       e.last_status,
       e.last_error,
       e.last_attempt_at,
       e.last_success_at,
       private.endpoint_concurrency(e.concurrency_limit, w.max_concurrent_requests) as concurrency,
       w.is_active and private.endpoint_held_back_by_own_limits(e.webhook_id) as held_back_by_own_limits,
       w.is_active and private.endpoint_waits_for_company_share(e.webhook_id) as waiting_for_company_share
  from private.webhook_endpoints e
  join public.webhooks w on w.id = e.webhook_id;
comment on column public.webhook_endpoint_health.waiting_for_company_share is
  'True while deliveries are due that wait for a freed slot of the company''s share of requests in flight (private.webhook_settings.company_concurrency): the company''s other endpoints hold it. Null for a reader who may not manage the endpoint''s company.';

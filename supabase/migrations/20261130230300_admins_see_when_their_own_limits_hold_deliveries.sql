-- ADMINs see when their own limits hold their deliveries back:
-- public.webhook_endpoint_health.held_back_by_own_limits.
--
-- An ADMIN who limits an endpoint (max_requests_per_second, max_concurrent_requests) and
-- then finds deliveries pending could not tell that wait from a slow or failing system: the
-- endpoint's state said "healthy", and the operators' lag no longer counts it
-- (20261130230100). The column says it: true while the endpoint has deliveries due that the
-- scheduler (private.endpoint_ready_at) makes wait, and would not without the endpoint's own
-- rate and cap (private.endpoint_held_back_by_its_admin, the operators' rule too). The
-- portal shows it under the endpoint's limits.
--
-- The view stays security_invoker, so the ADMIN reads only their company's rows. The rule
-- needs the scheduling columns ADMINs may not read (ready_at, the bucket) and every pending
-- delivery of the endpoint, so the view calls private.endpoint_held_back_by_own_limits
-- (webhook_id): security definer, and it answers only a caller who may manage the
-- endpoint's company (private.can_manage_company: its active ADMINs, the service role) or a
-- session that has not switched to an API role (postgres in the SQL editor, operators);
-- anyone else gets null, whichever id they pass, so it tells nobody anything about another
-- tenant. It is the one more private function authenticated may execute
-- (supabase/tests/schema/private-functions-closed.test.sql).
-- Test: supabase/tests/scheduling/endpoint-health-view.test.sql;
-- tests/frontend/health-and-ordering-client.test.ts; the portal's
-- tests/portal/health-and-order.test.ts.

-- PL/pgSQL, not SQL: a SQL function that sets search_path is planned again at every call
-- (20261130160000).
create function private.endpoint_held_back_by_own_limits(webhook_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  endpoint private.webhook_endpoints;
begin
  select * into endpoint from private.webhook_endpoints e where e.webhook_id = endpoint_held_back_by_own_limits.webhook_id;
  if not found
     -- role 'none': a session that has not switched to an API role (postgres in the SQL
     -- editor, an operator's psql), which reads every row anyway.
     or not (private.can_manage_company(endpoint.company_id) or pg_catalog.current_setting('role') = 'none') then
    return null;
  end if;
  return private.endpoint_held_back_by_its_admin(endpoint);
end;
$$;
comment on function private.endpoint_held_back_by_own_limits(uuid) is
  'private.endpoint_held_back_by_its_admin for the endpoint with this id, answered only to who may manage its company (or a session that has not switched to an API role); null for anyone else. Computed by public.webhook_endpoint_health.';
revoke execute on function private.endpoint_held_back_by_own_limits(uuid) from public;
grant execute on function private.endpoint_held_back_by_own_limits(uuid) to authenticated, service_role;

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
       w.is_active and private.endpoint_held_back_by_own_limits(e.webhook_id) as held_back_by_own_limits
  from private.webhook_endpoints e
  join public.webhooks w on w.id = e.webhook_id;
comment on column public.webhook_endpoint_health.held_back_by_own_limits is
  'True while deliveries are due that wait only because of the endpoint''s own max_requests_per_second or max_concurrent_requests (set by its ADMIN): without them they would go now. Null for a reader who may not manage the endpoint''s company.';

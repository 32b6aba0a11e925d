-- What a page needs to know before it shows anything: does the caller manage webhooks, and
-- for which company? Answered by the same predicate every policy uses, so the portal never
-- restates the rule (active ADMIN of an active company) and a "not allowed" screen means
-- exactly what RLS means.
create function public.webhooks_admin_company_id()
returns uuid
language sql
stable
security invoker
set search_path = ''
as $$
  select private.admin_company_id()
$$;
comment on function public.webhooks_admin_company_id() is
  'The company whose webhooks the caller manages (active ADMIN of an active company), or null.';

revoke execute on function public.webhooks_admin_company_id() from public, anon;
grant execute on function public.webhooks_admin_company_id() to authenticated, service_role;

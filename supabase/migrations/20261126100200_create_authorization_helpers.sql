-- Authorization predicates, in one place. Policies call them as `(select ...)` so that
-- Postgres evaluates them once per statement (an InitPlan), not once per row.
--
-- They are security definer because they read public.users, which the caller's own RLS
-- would otherwise filter; each only ever answers about the calling user (auth.uid()).

create function private.member_company_id()
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.company_id
    from public.users u
    join public.companies c on c.id = u.company_id
   where u.supabase_uid = auth.uid()
     and u.is_active
     and c.is_active
$$;
comment on function private.member_company_id() is
  'Company of the calling user when that user and company are active; null otherwise.';

create function private.admin_company_id()
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.company_id
    from public.users u
    join public.companies c on c.id = u.company_id
   where u.supabase_uid = auth.uid()
     and u.is_active
     and u.role = 'ADMIN'
     and c.is_active
$$;
comment on function private.admin_company_id() is
  'Company the calling user administers (active ADMIN of an active company); null otherwise.';

create function private.is_company_admin(company_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  -- coalesce: a null here would make `not is_company_admin(...)` null too, and a
  -- caller's `if not ... then raise` would let the request through.
  select coalesce(company_id = private.admin_company_id(), false)
$$;
comment on function private.is_company_admin(uuid) is
  'True when the calling user is an active ADMIN of that company.';

-- RPCs may also be called by trusted backends with the service-role key.
create function private.can_manage_company(company_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(auth.role() = 'service_role', false)
      or coalesce(private.is_company_admin(company_id), false)
$$;
comment on function private.can_manage_company(uuid) is
  'True for the service role and for an active ADMIN of that company. Used by admin RPCs.';

grant usage on schema private to authenticated, service_role;
grant execute on function private.member_company_id(),
                          private.admin_company_id(),
                          private.is_company_admin(uuid),
                          private.can_manage_company(uuid)
  to authenticated, service_role;

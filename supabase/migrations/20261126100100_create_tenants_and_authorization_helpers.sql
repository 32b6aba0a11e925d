-- Tenants and their people: companies, the role catalogue and the users linked to
-- auth.users (columns follow Serial's documented schema), the authorization predicates every
-- policy calls, and the row-level security of these three tables.
--
-- The predicates live here, in one place. Policies call them as `(select ...)` so that
-- Postgres evaluates them once per statement (an InitPlan), not once per row. They are
-- security definer because they read public.users, which the caller's own RLS would
-- otherwise filter; each only ever answers about the calling user (auth.uid()).
-- anon gets nothing on any table; service_role bypasses RLS (Supabase).

create table public.companies (
  id         uuid primary key default gen_random_uuid(),
  created_at timestamptz not null default now(),
  name       text not null constraint companies_name_not_blank check (btrim(name) <> ''),
  is_active  boolean not null default true,
  config     jsonb not null default '{}'::jsonb
);
comment on table public.companies is 'A Serial customer (tenant). Every other row belongs to exactly one company.';

create table public.user_types (
  type        text primary key constraint user_types_type_upper_snake check (type ~ '^[A-Z][A-Z0-9_]*$'),
  description text not null
);
comment on table public.user_types is 'Role catalogue. Only ADMIN users may manage webhooks.';

insert into public.user_types (type, description) values
  ('ADMIN',    'Manages the company: users, processes, webhooks and their secrets'),
  ('MEMBER',   'Works with the company''s data; cannot manage webhooks'),
  ('OPERATOR', 'Runs production stations; read access to processes');

create table public.users (
  supabase_uid       uuid primary key references auth.users (id) on delete cascade,
  company_id         uuid references public.companies (id) on delete cascade,
  created_at         timestamptz not null default now(),
  is_active          boolean not null default true,
  email              text not null,
  first_name         text,
  last_name          text,
  role               text not null references public.user_types (type),
  default_station_id uuid,
  title              text
);
comment on table public.users is 'Serial profile of an auth user: company, role and active flag drive every policy.';
create index users_company_id_idx on public.users (company_id);

-- Authorization predicates -------------------------------------------------------------

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

revoke execute on function private.member_company_id(), private.admin_company_id(),
                           private.is_company_admin(uuid), private.can_manage_company(uuid)
  from public;
-- Policies call these as the requesting user.
grant execute on function private.member_company_id(),
                          private.admin_company_id(),
                          private.is_company_admin(uuid),
                          private.can_manage_company(uuid)
  to authenticated, service_role;

-- Row-level security -------------------------------------------------------------------

alter table public.companies enable row level security;
alter table public.user_types enable row level security;
alter table public.users enable row level security;
revoke all on public.companies, public.user_types, public.users from anon, authenticated;

-- companies: members read their own company.
grant select on public.companies to authenticated;
create policy "Members can view their own company"
  on public.companies for select to authenticated
  using (id = (select private.member_company_id()));

-- user_types: a catalogue every signed-in user may read.
grant select on public.user_types to authenticated;
create policy "Signed-in users can view the role catalogue"
  on public.user_types for select to authenticated
  using (true);

-- users: everyone reads their own row; admins read their company's users.
grant select on public.users to authenticated;
-- One policy, not two: Postgres would evaluate every permissive policy for each row.
create policy "Users can view their own profile, admins their company's users"
  on public.users for select to authenticated
  using (supabase_uid = (select auth.uid()) or company_id = (select private.admin_company_id()));

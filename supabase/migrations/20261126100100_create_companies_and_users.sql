-- Tenants and their people: companies, the role catalogue and the users linked to
-- auth.users. Columns follow Serial's documented schema.

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

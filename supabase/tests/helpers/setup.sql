-- Tests-only helpers, applied by the test runner to the throwaway test database after
-- the migrations. Never shipped as a migration.
create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

-- A company, returned by id.
create or replace function tests.create_company(name text default 'Test company')
returns uuid
language sql
set search_path = ''
as $$
  insert into public.companies (name) values (create_company.name) returning id
$$;

-- An auth user plus its public.users row (company may be null for "no company").
-- with_profile = false makes a signed-up user with no Serial profile at all.
create or replace function tests.create_user(
  email text,
  company_id uuid,
  role text default 'MEMBER',
  is_active boolean default true,
  with_profile boolean default true
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  uid uuid := gen_random_uuid();
begin
  insert into auth.users (id, email) values (uid, create_user.email);
  if with_profile then
    insert into public.users (supabase_uid, company_id, email, role, is_active)
    values (uid, create_user.company_id, create_user.email, create_user.role, create_user.is_active);
  end if;
  return uid;
end;
$$;

-- Act as a signed-in user, the way PostgREST does: role switch plus JWT claims.
create or replace function tests.authenticate_as(user_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims',
    json_build_object('sub', user_id, 'role', 'authenticated', 'aud', 'authenticated')::text, true);
  perform set_config('role', 'authenticated', true);
end;
$$;

create or replace function tests.authenticate_as_anon()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '{"role":"anon"}', true);
  perform set_config('role', 'anon', true);
end;
$$;

create or replace function tests.authenticate_as_service_role()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '{"role":"service_role"}', true);
  perform set_config('role', 'service_role', true);
end;
$$;

-- Back to the superuser running the test (to check what really changed).
create or replace function tests.clear_authentication()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', null, true);
end;
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

-- A webhook endpoint of a company, created as the superuser running the test (so RLS
-- and column grants do not get in the way of the setup), returned by id.
create or replace function tests.create_webhook(
  company_id uuid,
  trigger_type text,
  url text,
  is_active boolean default true
)
returns uuid
language sql
set search_path = ''
as $$
  insert into public.webhooks (company_id, trigger_type, url, is_active)
  values (create_webhook.company_id, create_webhook.trigger_type, create_webhook.url, create_webhook.is_active)
  returning id
$$;

grant execute on function tests.create_webhook(uuid, text, text, boolean) to anon, authenticated, service_role;

-- The constraint named by the error a statement raises: the diagnostics field that
-- throws_ok cannot see (a trigger may raise 23514 with `constraint = ...` and a message
-- that does not name it). Null when the error names no constraint, or when the statement
-- does not fail at all (its effects then stay, inside the test's transaction).
create or replace function tests.error_constraint(statement text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  named text;
begin
  execute statement;
  return null;
exception when others then
  get stacked diagnostics named = constraint_name;
  return nullif(named, '');
end;
$$;

grant execute on function tests.error_constraint(text) to anon, authenticated, service_role;

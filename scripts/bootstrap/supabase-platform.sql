-- Supabase platform objects for a plain local PostgreSQL (no Docker).
--
-- A Supabase project already has all of this before the first migration runs: it comes from
-- the supabase/postgres image (migrations/db/init-scripts) and the Auth server's own
-- migrations (supabase/auth). Our migrations rely on it, so the local stack and the tests
-- apply this file to a fresh cluster first. It is never a migration and never deployed.
--
-- It mirrors Supabase's definitions for what this project uses: the API roles, the `auth`
-- schema with `auth.users` and the JWT helper functions, the `extensions` schema, and the
-- grants and default privileges the API roles get on `public`. Storage, Realtime, GraphQL,
-- Vault and pg_net are left out. One local difference: here `postgres` is a superuser
-- (on Supabase it is not), so this file can be run by it.
--
-- Re-runnable: every statement is idempotent, so `npm start` applies it on every start.

-- ---------------------------------------------------------------------------------------
-- API roles (supabase/postgres init-scripts/00000000000000-initial-schema.sql, then
-- migrations/20230529180330_alter_api_roles_for_inherit.sql, which made them inherit)
-- ---------------------------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit; -- a logged-in user
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls; -- server-side keys: past RLS
  end if;
  -- PostgREST logs in as authenticator and switches to the role named in the JWT.
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  -- Owner of the auth schema on Supabase (the Auth server's role). Nobody logs in as it here.
  if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin nologin noinherit;
  end if;
end
$$;

alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
-- The local password of authenticator is the same as postgres's (like `supabase start`).
alter role authenticator with login noinherit password 'postgres';

grant anon to authenticator;
grant authenticated to authenticator;
grant service_role to authenticator;

-- Short statement timeouts for the API roles, as on Supabase.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
-- migrations/20221028101028_set_authenticator_timeout.sql and 20231130133139_...lock_timeout
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';

-- Supabase's search_path for postgres (init-scripts/00000000000003-post-setup.sql):
-- extension functions such as gen_random_bytes() or pgTAP's resolve without a schema.
alter role postgres set search_path to "$user", public, extensions;

-- ---------------------------------------------------------------------------------------
-- Extensions live in their own schema (initial-schema.sql: "Extension namespacing")
-- ---------------------------------------------------------------------------------------
create schema if not exists extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- The public schema: the API roles get everything created in it by default, and RLS is
-- what actually protects rows (initial-schema.sql). Migrations tighten this per object.
-- ---------------------------------------------------------------------------------------
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- The auth schema (init-scripts/00000000000001-auth-schema.sql and supabase/auth)
-- ---------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_auth_admin;

-- auth.users with the columns the Auth server maintains today. Only id is required;
-- created_at/updated_at have no default on Supabase either (the Auth server sets them).
create table if not exists auth.users (
  instance_id uuid,
  id uuid not null,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text default null,
  phone_confirmed_at timestamptz,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0,
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false,
  constraint users_pkey primary key (id),
  constraint users_phone_key unique (phone),
  constraint users_email_change_confirm_status_check check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2)
);
create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);
create index if not exists users_instance_id_idx on auth.users (instance_id);
create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower((email)::text));
create index if not exists users_is_anonymous_idx on auth.users (is_anonymous);
comment on table auth.users is 'Auth: Stores user login data within a secure schema.';
alter table auth.users owner to supabase_auth_admin;
-- The Auth server enables RLS on its tables (supabase/auth 20240612123726_enable_rls_update_grants);
-- no policies, so only owners, superusers and bypassrls roles read them.
alter table auth.users enable row level security;

-- The JWT helpers, exactly as the Auth server defines them today
-- (supabase/auth migrations/20240624145325_recreate_auth_functions.up.sql). PostgREST sets
-- request.jwt.claims (one JSON GUC); older versions set request.jwt.claim.<name>: both work.
create or replace function auth.uid()
  returns uuid
  set search_path to ''
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$ language sql stable;

create or replace function auth.role()
  returns text
  set search_path to ''
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$ language sql stable;

create or replace function auth.email()
  returns text
  set search_path to ''
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$ language sql stable;

create or replace function auth.jwt()
  returns jsonb
  set search_path to ''
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$ language sql stable;

comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;

-- The API roles may call the helpers (policies do), but see no auth tables.
grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt() to anon, authenticated, service_role;
-- postgres manages auth objects on Supabase too (migrations/20211115181400_update-auth-permissions.sql),
-- e.g. a migration may add a trigger on auth.users.
grant all privileges on schema auth to supabase_auth_admin;
grant usage on schema auth to postgres;
grant all on all tables in schema auth to postgres;
grant all on all sequences in schema auth to postgres;
grant all on all routines in schema auth to postgres;

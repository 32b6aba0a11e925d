-- Foundation: the private schema, what new objects in `public` get by default, and the
-- generic bookkeeping trigger the later tables use.
--
-- Revoke first, grant exactly. Supabase grants anon/authenticated every privilege on new
-- objects in `public`; this package grants per table, per column and per function instead,
-- so a new object is closed until the migration that creates it opens it.
--
-- Functions in any schema: Postgres lets PUBLIC execute every new function. Only a default
-- privilege WITHOUT `in schema` could change that (per-schema defaults can only add to the
-- global ones: `alter default privileges in schema private revoke execute on functions from
-- public` does nothing). That global form would also close every function the deploying role
-- creates later, in any schema, including the extensions it installs (pgTAP's own functions,
-- for one), so this package does not use it. Instead every migration revokes EXECUTE from
-- PUBLIC on each function it creates, next to the grants that reopen exactly what API roles
-- need; a pgTAP catalog check fails on any private function left executable by PUBLIC, anon
-- or authenticated.

-- Supabase's per-schema defaults also hand new functions in public to anon and authenticated;
-- revoking inside the same per-schema default does work.
alter default privileges in schema public revoke execute on functions from anon, authenticated;

create schema if not exists private;
comment on schema private is
  'Serial webhooks internals: authorization helpers, secrets, outbox machinery. Never exposed through the API.';
revoke all on schema private from public;
-- Policies call the authorization helpers as the requesting user, and trusted backends call
-- the outbox and dispatcher API as service_role; each function is granted on its own.
grant usage on schema private to authenticated, service_role;

-- Generic bookkeeping trigger: keeps updated_at honest whatever the client sends.
create function private.tg_set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

revoke execute on function private.tg_set_updated_at() from public;

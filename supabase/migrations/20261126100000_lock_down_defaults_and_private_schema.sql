-- Revoke first, grant exactly.
--
-- Supabase grants anon/authenticated every privilege on new objects in `public`, and
-- Postgres lets PUBLIC execute every new function. This package grants per table, per
-- column and per function instead, so a new object is closed until a migration opens it.
-- The `private` schema holds machinery that PostgREST never exposes: authorization
-- helpers, secrets and the outbox functions.

alter default privileges in schema public revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from anon, authenticated;

create schema if not exists private;
comment on schema private is
  'Serial webhooks internals: authorization helpers, secrets, outbox machinery. Never exposed through the API.';
revoke all on schema private from public;
alter default privileges in schema private revoke execute on functions from public;

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

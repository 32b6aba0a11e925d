-- The functions on the business path and in a dispatcher's round trip, in plpgsql.
--
-- A SQL-language function with `set search_path` (every function here has one) is never
-- inlined, and each call parses and plans its query again; plpgsql keeps its plans for the
-- session. Called once or more per process write and per delivery, the planning was a
-- large part of their cost: process_changed_fields alone, planned twice per revision
-- (update_process_revision and the event's changed_fields), cost about 100 us a
-- subscribed revision here. Same arguments, same results; only the language changes.

create or replace function private.process_non_definition_columns()
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
begin
  return array['id', 'company_id', 'created_at', 'created_by_user_id', 'updated_at',
               'revision', 'carbon_copy', 'approved', 'approved_by_user_id', 'approved_at'];
end;
$$;

create or replace function private.process_changed_fields(old_row public.processes, new_row public.processes)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
begin
  return (select coalesce(array_agg(n.key order by n.key), '{}')
            from jsonb_each(to_jsonb(new_row)) n
            join jsonb_each(to_jsonb(old_row)) o using (key)
           where n.value is distinct from o.value
             and n.key <> all (private.process_non_definition_columns()));
end;
$$;

create or replace function private.process_event_data(process public.processes)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return to_jsonb(process) - 'carbon_copy';
end;
$$;

create or replace function private.webhook_payload_limit_bytes()
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
  return 262144;
end;
$$;

create or replace function private.webhook_signing_secrets(webhook_id uuid)
returns text[]
language plpgsql
stable
set search_path = ''
as $$
begin
  return (select array_remove(array[
                   s.secret,
                   case when s.previous_secret_expires_at > now() then s.previous_secret end
                 ], null)
            from private.webhook_secrets s
           where s.webhook_id = webhook_signing_secrets.webhook_id);
end;
$$;

-- Process events: PROCESS_CREATED, PROCESS_REVISED (when update_process_revision bumped
-- the revision) and PROCESS_DELETED.
--
-- The business transaction never waits on the network (delivery happens after commit)
-- and an oversized snapshot never makes it fail: it is dropped from the payload
-- (data.truncated = true). Database errors (serialization failures, lock timeouts) are
-- NOT swallowed: the change and its event commit together or not at all, so a client
-- retry repeats both.

create function private.process_event_data(process public.processes)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select to_jsonb(process) - 'carbon_copy'
$$;

create function private.emit_process_event(company_id uuid, trigger_type text, data jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  begin
    perform private.enqueue_webhook_event(company_id, trigger_type, data);
  exception when program_limit_exceeded then
    -- Too large: keep the identifying fields, drop the bulky snapshots.
    perform private.enqueue_webhook_event(
      company_id, trigger_type,
      jsonb_build_object('process_id', data -> 'process_id',
                         'revision', data -> 'revision',
                         'previous_revision', data -> 'previous_revision',
                         'changed_fields', data -> 'changed_fields',
                         'truncated', true));
  end;
end;
$$;

create function private.tg_processes__emit_webhook_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.emit_process_event(new.company_id, 'PROCESS_CREATED', jsonb_build_object(
      'process_id', new.id,
      'revision', new.revision,
      'process', private.process_event_data(new)));
  elsif tg_op = 'UPDATE' then
    if new.revision = old.revision then
      return null;  -- approval or bookkeeping only: not a revision
    end if;
    perform private.emit_process_event(new.company_id, 'PROCESS_REVISED', jsonb_build_object(
      'process_id', new.id,
      'revision', new.revision,
      'previous_revision', old.revision,
      'changed_fields', to_jsonb(private.process_changed_fields(old, new)),
      'process', private.process_event_data(new),
      'previous', new.carbon_copy));
  else
    perform private.emit_process_event(old.company_id, 'PROCESS_DELETED', jsonb_build_object(
      'process_id', old.id,
      'revision', old.revision,
      'process', private.process_event_data(old)));
  end if;
  return null;
end;
$$;

create trigger emit_webhook_event
  after insert or update or delete on public.processes
  for each row execute function private.tg_processes__emit_webhook_event();

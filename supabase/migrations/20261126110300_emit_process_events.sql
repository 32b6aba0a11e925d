-- Process events: PROCESS_CREATED, PROCESS_REVISED (when update_process_revision bumped
-- the revision) and PROCESS_DELETED, written to the outbox by a trigger on processes.
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

-- Insert the event of a process change for the given subscribers.
create function private.emit_process_event(company_id uuid, trigger_type text, data jsonb, webhook_ids uuid[])
returns void
language plpgsql
set search_path = ''
as $$
begin
  -- Too large for the 256 KB limit (with room for the envelope): keep the identifying
  -- fields, drop the bulky snapshots. Checked up front rather than by catching the
  -- insert's error, which would cost a subtransaction on every process write.
  if octet_length(data::text) > private.webhook_payload_limit_bytes() - 1024 then
    data := jsonb_build_object('process_id', data -> 'process_id',
                               'revision', data -> 'revision',
                               'previous_revision', data -> 'previous_revision',
                               'changed_fields', data -> 'changed_fields',
                               'truncated', true);
  end if;
  perform private.insert_webhook_event(company_id, trigger_type, data, webhook_ids);
end;
$$;

-- The subscribers come first, looked up once (lock_subscribed_webhooks): the business
-- path builds no payload at all for the (usual) processes nobody subscribes to, and a
-- subscribed write goes straight to insert_webhook_event with them. The company and the
-- type need no check: they come from the row and from this code.
create function private.tg_processes__emit_webhook_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  targets uuid[];
begin
  if tg_op = 'INSERT' then
    targets := private.lock_subscribed_webhooks(new.company_id, 'PROCESS_CREATED');
    if targets is null then
      return null;
    end if;
    perform private.emit_process_event(new.company_id, 'PROCESS_CREATED', jsonb_build_object(
      'process_id', new.id,
      'revision', new.revision,
      'process', private.process_event_data(new)), targets);
  elsif tg_op = 'UPDATE' then
    if new.revision = old.revision then  -- approval or bookkeeping only: not a revision
      return null;
    end if;
    targets := private.lock_subscribed_webhooks(new.company_id, 'PROCESS_REVISED');
    if targets is null then
      return null;
    end if;
    perform private.emit_process_event(new.company_id, 'PROCESS_REVISED', jsonb_build_object(
      'process_id', new.id,
      'revision', new.revision,
      'previous_revision', old.revision,
      'changed_fields', to_jsonb(private.process_changed_fields(old, new)),
      'process', private.process_event_data(new),
      'previous', new.carbon_copy), targets);
  else
    targets := private.lock_subscribed_webhooks(old.company_id, 'PROCESS_DELETED');
    if targets is null then
      return null;
    end if;
    perform private.emit_process_event(old.company_id, 'PROCESS_DELETED', jsonb_build_object(
      'process_id', old.id,
      'revision', old.revision,
      'process', private.process_event_data(old)), targets);
  end if;
  return null;
end;
$$;

create trigger emit_webhook_event
  after insert or update or delete on public.processes
  for each row execute function private.tg_processes__emit_webhook_event();

revoke execute on function private.process_event_data(public.processes),
                           private.emit_process_event(uuid, text, jsonb, uuid[]),
                           private.tg_processes__emit_webhook_event()
  from public;

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

-- Whether any active endpoint of the company listens for this type: the business path
-- builds no payload at all for the (usual) processes nobody subscribes to.
create function private.has_webhook_subscribers(company_id uuid, trigger_type text)
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (select 1
                   from public.webhooks w
                  where w.company_id = has_webhook_subscribers.company_id
                    and w.trigger_type = has_webhook_subscribers.trigger_type
                    and w.is_active)
$$;

create function private.emit_process_event(company_id uuid, trigger_type text, data jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  -- Too large for the 256 KB limit (with room for the envelope): keep the identifying
  -- fields, drop the bulky snapshots. Checked up front rather than by catching the
  -- enqueue's error, which would cost a subtransaction on every process write.
  if octet_length(data::text) > private.webhook_payload_limit_bytes() - 1024 then
    data := jsonb_build_object('process_id', data -> 'process_id',
                               'revision', data -> 'revision',
                               'previous_revision', data -> 'previous_revision',
                               'changed_fields', data -> 'changed_fields',
                               'truncated', true);
  end if;
  perform private.enqueue_webhook_event(company_id, trigger_type, data);
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
    if not private.has_webhook_subscribers(new.company_id, 'PROCESS_CREATED') then
      return null;
    end if;
    perform private.emit_process_event(new.company_id, 'PROCESS_CREATED', jsonb_build_object(
      'process_id', new.id,
      'revision', new.revision,
      'process', private.process_event_data(new)));
  elsif tg_op = 'UPDATE' then
    if new.revision = old.revision  -- approval or bookkeeping only: not a revision
       or not private.has_webhook_subscribers(new.company_id, 'PROCESS_REVISED') then
      return null;
    end if;
    perform private.emit_process_event(new.company_id, 'PROCESS_REVISED', jsonb_build_object(
      'process_id', new.id,
      'revision', new.revision,
      'previous_revision', old.revision,
      'changed_fields', to_jsonb(private.process_changed_fields(old, new)),
      'process', private.process_event_data(new),
      'previous', new.carbon_copy));
  else
    if not private.has_webhook_subscribers(old.company_id, 'PROCESS_DELETED') then
      return null;
    end if;
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

revoke execute on function private.process_event_data(public.processes),
                           private.has_webhook_subscribers(uuid, text),
                           private.emit_process_event(uuid, text, jsonb),
                           private.tg_processes__emit_webhook_event()
  from public;

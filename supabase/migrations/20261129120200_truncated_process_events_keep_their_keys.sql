-- A process event too large to send whole drops only its snapshots (process, previous)
-- and says truncated: every other key of its type stays, and no key is added. Before,
-- truncated PROCESS_CREATED and PROCESS_DELETED events gained previous_revision and
-- changed_fields as nulls, keys their type does not have (README "Receiving webhooks").

create or replace function private.emit_process_event(company_id uuid, trigger_type text, data jsonb, webhook_ids uuid[])
returns void
language plpgsql
set search_path = ''
as $$
begin
  -- Too large for the 256 KB limit (with room for the envelope): drop the bulky
  -- snapshots. Checked up front rather than by catching the insert's error, which would
  -- cost a subtransaction on every process write.
  if octet_length(data::text) > private.webhook_payload_limit_bytes() - 1024 then
    data := (data - 'process' - 'previous') || jsonb_build_object('truncated', true);
  end if;
  perform private.insert_webhook_event(company_id, trigger_type, data, webhook_ids);
end;
$$;

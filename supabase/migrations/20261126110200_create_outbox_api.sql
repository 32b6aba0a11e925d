-- The outbox API: one function records an event and fans it out to every active
-- endpoint subscribed to it, in the caller's transaction. Rollback leaves nothing;
-- commit leaves the event, its deliveries, and a NOTIFY for local workers (and, on
-- Supabase, a pg_net wake-up of the edge function, once per transaction).

create function private.webhook_payload_limit_bytes()
returns integer
language sql
immutable
set search_path = ''
as $$ select 262144 $$;

-- Insert one event and its deliveries to the given webhooks; returns the event id.
-- Shared by the fan-out below and the admin RPCs that target one endpoint.
create function private.insert_webhook_event(
  company_id uuid,
  trigger_type text,
  data jsonb,
  webhook_ids uuid[]
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  event_id uuid := gen_random_uuid();
  body jsonb;
  body_bytes integer;
begin
  if company_id is null then
    raise exception 'company_id is required' using errcode = '22004';
  end if;
  if not exists (select 1 from public.webhook_trigger_types t where t.name = insert_webhook_event.trigger_type) then
    raise exception 'unknown webhook trigger type "%"', trigger_type
      using errcode = '23503', hint = 'Use a name from public.webhook_trigger_types.';
  end if;

  body := jsonb_build_object(
    'type', trigger_type,
    'timestamp', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'company_id', company_id,
    'data', coalesce(data, '{}'::jsonb)
  );
  body_bytes := octet_length(body::text);
  if body_bytes > private.webhook_payload_limit_bytes() then
    raise exception 'webhook payload is % bytes; the limit is % bytes (256 KB)',
      body_bytes, private.webhook_payload_limit_bytes()
      using errcode = '54000', hint = 'Send identifiers and let the receiver fetch large data.';
  end if;

  insert into public.webhook_events (id, company_id, trigger_type, payload)
  values (event_id, insert_webhook_event.company_id, insert_webhook_event.trigger_type, body);

  insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at)
  select insert_webhook_event.company_id, event_id, w.id, now()
    from unnest(webhook_ids) as target(id)
    join public.webhooks w on w.id = target.id;

  return event_id;
end;
$$;

create function private.enqueue_webhook_event(company_id uuid, trigger_type text, data jsonb)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  targets uuid[];
begin
  if company_id is null then
    raise exception 'company_id is required' using errcode = '22004';
  end if;
  -- FOR SHARE: an endpoint being disabled meanwhile waits for this transaction, and its
  -- cancel trigger then sees (and cancels) the deliveries made here; without the lock a
  -- delivery committed after the disable would stay pending for a disabled endpoint.
  select array_agg(t.id order by t.id) into targets
    from (select w.id
            from public.webhooks w
           where w.company_id = enqueue_webhook_event.company_id
             and w.trigger_type = enqueue_webhook_event.trigger_type
             and w.is_active
           order by w.id
             for share) t;

  if targets is null then
    -- Still validate the input, so a caller's mistake is not hidden by an empty fan-out.
    if not exists (select 1 from public.webhook_trigger_types t where t.name = enqueue_webhook_event.trigger_type) then
      raise exception 'unknown webhook trigger type "%"', trigger_type
        using errcode = '23503', hint = 'Use a name from public.webhook_trigger_types.';
    end if;
    return null;  -- nobody subscribed: no event row, nothing to deliver
  end if;

  return private.insert_webhook_event(company_id, trigger_type, data, targets);
end;
$$;
comment on function private.enqueue_webhook_event(uuid, text, jsonb) is
  'Outbox API: records an event and one pending delivery per active subscribed endpoint of the company, atomically with the caller. Returns the event id, or null when no endpoint is subscribed.';

grant execute on function private.enqueue_webhook_event(uuid, text, jsonb) to service_role;

-- Wake-ups --------------------------------------------------------------------------

-- pg_net wake-up of the edge function, used only where pg_net exists and a dispatcher
-- URL is configured (Vault secrets webhook_dispatcher_url / webhook_dispatcher_key, or
-- private.webhook_settings). At most one call per transaction.
create function private.wake_dispatcher()
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  target_url text;
  target_key text;
begin
  if to_regnamespace('net') is null then
    return;
  end if;
  if current_setting('webhooks.woken_in_xact', true) = txid_current()::text then
    return;
  end if;
  perform set_config('webhooks.woken_in_xact', txid_current()::text, true);

  -- Dynamic SQL, built with format(): these objects exist only on Supabase, and static
  -- checks (plpgsql_check) must not require them on plain Postgres.
  if to_regclass('vault.decrypted_secrets') is not null then
    execute format(
      'select max(decrypted_secret) filter (where name = %L), max(decrypted_secret) filter (where name = %L)'
      ' from %I.decrypted_secrets where name in (%L, %L)',
      'webhook_dispatcher_url', 'webhook_dispatcher_key', 'vault', 'webhook_dispatcher_url', 'webhook_dispatcher_key')
      into target_url, target_key;
  end if;
  select coalesce(target_url, s.dispatcher_url), coalesce(target_key, s.dispatcher_key)
    into target_url, target_key
    from private.webhook_settings s;
  if target_url is null then
    return;
  end if;

  execute format('select %I.http_post(url := $1, headers := $2, body := $3, timeout_milliseconds := 10000)', 'net')
    using target_url,
          jsonb_build_object('Authorization', 'Bearer ' || coalesce(target_key, ''),
                             'Content-Type', 'application/json'),
          '{"reason":"deliveries"}'::jsonb;
end;
$$;

create function private.tg_webhook_deliveries__wake_dispatchers()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from inserted) then
    return null;
  end if;
  -- NOTIFY is delivered at commit and deduplicated within a transaction.
  perform pg_notify('webhook_deliveries', '');
  perform private.wake_dispatcher();
  return null;
end;
$$;

create trigger wake_dispatchers
  after insert on public.webhook_deliveries
  referencing new table as inserted
  for each statement execute function private.tg_webhook_deliveries__wake_dispatchers();

-- The durable event outbox: events, one delivery per subscribed endpoint, every delivery
-- attempt, and the functions that write them in the caller's transaction. Ordinary logged
-- tables (not pg_net's unlogged 6-hour queue), so a Postgres restart or a dead dispatcher
-- loses nothing. Rollback leaves nothing; commit leaves the event, its deliveries, and a
-- NOTIFY for local workers (and, on Supabase, a pg_net wake-up of the edge function, once
-- per transaction).
--
-- Lease design: claiming a delivery sets lease_owner/lease_expires_at and moves
-- next_attempt_at to the lease expiry. A dispatcher that dies therefore needs no
-- janitor: when the lease runs out the delivery is simply due again, and the one partial
-- index on (next_attempt_at) where state = 'pending' serves both fresh and expired work.
--
-- Also here, though they fire on public.webhooks: the triggers that cancel an endpoint's
-- pending deliveries when it is disabled or deleted (they write deliveries, created here).

-- The states and outcomes are types rather than checks, so clients get them from the
-- generated types (src/database.types.ts) instead of copying a list.
create type public.webhook_delivery_state as enum ('pending', 'succeeded', 'failed', 'cancelled');
comment on type public.webhook_delivery_state is
  'pending: due or scheduled, possibly leased to a dispatcher; succeeded; failed: retries exhausted or the target blocked by the SSRF guard; cancelled: the endpoint was disabled or deleted while the delivery was pending.';
create type public.webhook_attempt_outcome as enum ('succeeded', 'failed', 'blocked');
comment on type public.webhook_attempt_outcome is
  'succeeded: a 2xx answer; failed: any other answer, a timeout or a connection error; blocked: the SSRF guard refused the target.';

create table public.webhook_events (
  id           uuid primary key default gen_random_uuid(),
  company_id   uuid not null references public.companies (id) on delete cascade,
  trigger_type text not null references public.webhook_trigger_types (name),
  payload      jsonb not null,
  created_at   timestamptz not null default now()
);
comment on table public.webhook_events is
  'Immutable events; payload is exactly the JSON body POSTed to endpoints.';
create index webhook_events_company_created_idx on public.webhook_events (company_id, created_at desc);

create table public.webhook_deliveries (
  id               uuid primary key default gen_random_uuid(),
  company_id       uuid not null references public.companies (id) on delete cascade,
  event_id         uuid not null references public.webhook_events (id) on delete cascade,
  webhook_id       uuid references public.webhooks (id) on delete set null,
  state            public.webhook_delivery_state not null default 'pending',
  attempt_count    integer not null default 0,
  next_attempt_at  timestamptz,
  lease_owner      text,
  lease_expires_at timestamptz,
  last_status      integer,
  last_error       text,
  last_attempt_at  timestamptz,
  redelivery_of    uuid references public.webhook_deliveries (id) on delete set null,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  completed_at     timestamptz,
  constraint webhook_deliveries_pending_is_scheduled
    check ((state = 'pending') = (next_attempt_at is not null)),
  constraint webhook_deliveries_closed_has_completed_at
    check ((state = 'pending') = (completed_at is null))
);
comment on table public.webhook_deliveries is
  'One row per (event, endpoint). id is the webhook-id header: stable across retries. state: see the type webhook_delivery_state.';
create index webhook_deliveries_due_idx on public.webhook_deliveries (next_attempt_at) where state = 'pending';
-- Claims walk pending work endpoint by endpoint (round-robin fairness).
create index webhook_deliveries_pending_by_webhook_idx on public.webhook_deliveries (webhook_id, next_attempt_at)
  where state = 'pending';
create index webhook_deliveries_webhook_created_idx on public.webhook_deliveries (webhook_id, created_at desc);
create index webhook_deliveries_company_created_idx on public.webhook_deliveries (company_id, created_at desc);
create index webhook_deliveries_event_idx on public.webhook_deliveries (event_id);
create index webhook_deliveries_redelivery_of_idx on public.webhook_deliveries (redelivery_of) where redelivery_of is not null;

create table public.webhook_delivery_attempts (
  id             bigint generated always as identity primary key,
  delivery_id    uuid not null references public.webhook_deliveries (id) on delete cascade,
  company_id     uuid not null references public.companies (id) on delete cascade,
  attempt_number integer not null,
  outcome        public.webhook_attempt_outcome not null,
  status         integer,
  duration_ms    integer,
  response_body  text constraint webhook_delivery_attempts_body_4kb check (char_length(response_body) <= 4096),
  error          text,
  worker         text,
  created_at     timestamptz not null default now()
);
comment on table public.webhook_delivery_attempts is
  'Every HTTP attempt: status, duration, at most 4 KB of the response, or why it failed or was blocked (SSRF guard).';
create index webhook_delivery_attempts_delivery_idx on public.webhook_delivery_attempts (delivery_id, attempt_number);
create index webhook_delivery_attempts_company_created_idx on public.webhook_delivery_attempts (company_id, created_at desc);

create trigger set_updated_at
  before update on public.webhook_deliveries
  for each row execute function private.tg_set_updated_at();

-- Read-only to active ADMINs of the company; written only by the machinery below.
alter table public.webhook_events enable row level security;
alter table public.webhook_deliveries enable row level security;
alter table public.webhook_delivery_attempts enable row level security;
revoke all on public.webhook_events, public.webhook_deliveries, public.webhook_delivery_attempts
  from anon, authenticated;
grant select on public.webhook_events, public.webhook_deliveries, public.webhook_delivery_attempts
  to authenticated;
create policy "Admins can view their company's webhook events"
  on public.webhook_events for select to authenticated
  using (company_id = (select private.admin_company_id()));
create policy "Admins can view their company's webhook deliveries"
  on public.webhook_deliveries for select to authenticated
  using (company_id = (select private.admin_company_id()));
create policy "Admins can view their company's delivery attempts"
  on public.webhook_delivery_attempts for select to authenticated
  using (company_id = (select private.admin_company_id()));

-- Writing events ------------------------------------------------------------------------

create function private.webhook_payload_limit_bytes()
returns integer
language sql
immutable
set search_path = ''
as $$ select 262144 $$;

-- The endpoints an event of this company and type goes to: every active webhook
-- subscribed to it, in id order, or null when there is none. The one subscriber query:
-- enqueue_webhook_event and the process trigger each ask it once per event.
--
-- FOR SHARE: an endpoint being disabled meanwhile waits for this transaction, and its
-- cancel trigger then sees (and cancels) the deliveries made here; without the lock a
-- delivery committed after the disable would stay pending for a disabled endpoint.
-- plpgsql rather than sql: its plan is kept for the session, and this runs on every
-- process write.
create function private.lock_subscribed_webhooks(company_id uuid, trigger_type text)
returns uuid[]
language plpgsql
volatile
set search_path = ''
as $$
declare
  targets uuid[];
begin
  select array_agg(t.id order by t.id) into targets
    from (select w.id
            from public.webhooks w
           where w.company_id = lock_subscribed_webhooks.company_id
             and w.trigger_type = lock_subscribed_webhooks.trigger_type
             and w.is_active
           order by w.id
             for share) t;
  return targets;
end;
$$;

-- Insert one event and its deliveries to the given webhooks; returns the event id. The
-- one writer of events, shared by the fan-out below, the process trigger and the admin
-- RPCs that target one endpoint. It checks the body's size (it builds the body); the
-- company and the type are checked once, where they come from: enqueue_webhook_event
-- checks what its caller passes, the others take them from a row (and the tables'
-- constraints refuse an event without a company or with an unknown type anyway).
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
  targets := private.lock_subscribed_webhooks(company_id, trigger_type);

  if targets is null then
    -- Still validate the input, so a caller's mistake is not hidden by an empty fan-out.
    -- (With a subscriber the type exists: webhooks.trigger_type references it.)
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

-- Wake-ups ------------------------------------------------------------------------------

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

-- Cancelling ----------------------------------------------------------------------------

-- Deliveries of an endpoint that is disabled or deleted end cancelled, never dropped.
create function private.cancel_pending_deliveries(webhook_id uuid, reason text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  update public.webhook_deliveries d
     set state = 'cancelled',
         next_attempt_at = null,
         completed_at = now(),
         lease_owner = null,
         lease_expires_at = null,
         last_error = reason
   where d.webhook_id = cancel_pending_deliveries.webhook_id
     and d.state = 'pending'
$$;

create function private.tg_webhooks__cancel_pending_deliveries()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    -- When the whole company is being deleted its deliveries go with it (cascade);
    -- updating them here would trip the company foreign key.
    if exists (select 1 from public.companies c where c.id = old.company_id) then
      perform private.cancel_pending_deliveries(old.id, 'endpoint deleted');
    end if;
    return old;
  end if;
  if old.is_active and not new.is_active then
    perform private.cancel_pending_deliveries(new.id, 'endpoint disabled: ' || coalesce(new.disabled_reason, 'no reason given'));
  end if;
  return null;
end;
$$;

create trigger cancel_pending_deliveries_on_disable
  after update of is_active on public.webhooks
  for each row execute function private.tg_webhooks__cancel_pending_deliveries();
create trigger cancel_pending_deliveries_on_delete
  before delete on public.webhooks
  for each row execute function private.tg_webhooks__cancel_pending_deliveries();

revoke execute on function private.lock_subscribed_webhooks(uuid, text),
                           private.webhook_payload_limit_bytes(),
                           private.insert_webhook_event(uuid, text, jsonb, uuid[]),
                           private.enqueue_webhook_event(uuid, text, jsonb),
                           private.wake_dispatcher(),
                           private.tg_webhook_deliveries__wake_dispatchers(),
                           private.cancel_pending_deliveries(uuid, text),
                           private.tg_webhooks__cancel_pending_deliveries()
  from public;
-- Trusted backends record their own events with the service-role key.
grant execute on function private.enqueue_webhook_event(uuid, text, jsonb) to service_role;

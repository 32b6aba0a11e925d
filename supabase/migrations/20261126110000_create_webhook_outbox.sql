-- The durable event outbox: events, one delivery per subscribed endpoint, and every
-- delivery attempt. Ordinary logged tables (not pg_net's unlogged 6-hour queue), so a
-- Postgres restart or a dead dispatcher loses nothing.
--
-- Lease design: claiming a delivery sets lease_owner/lease_expires_at and moves
-- next_attempt_at to the lease expiry. A dispatcher that dies therefore needs no
-- janitor: when the lease runs out the delivery is simply due again, and the one partial
-- index on (next_attempt_at) where state = 'pending' serves both fresh and expired work.

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
  state            text not null default 'pending'
                   constraint webhook_deliveries_state_valid
                   check (state in ('pending', 'succeeded', 'failed', 'cancelled')),
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
  'One row per (event, endpoint). id is the webhook-id header: stable across retries. States: pending, succeeded, failed, cancelled.';
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
  outcome        text not null
                 constraint webhook_delivery_attempts_outcome_valid
                 check (outcome in ('succeeded', 'failed', 'blocked')),
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

-- Webhook endpoints and everything that belongs to one: the trigger types it subscribes to,
-- the deployment settings its url is checked against, its signing secret, its triggers and
-- its row-level security.
--
-- Serial's columns (id, company_id, trigger_type, url, created_at, updated_at) plus ours
-- (is_active, description, disable bookkeeping). Trigger types are rows, so adding one is an
-- insert, not a schema change. Signing secrets (Standard Webhooks `whsec_<base64>`) are kept
-- in the private schema so no plain select through the API can return them; rotation keeps
-- the previous secret for a 24-hour overlap, and the dispatcher signs with both meanwhile.
--
-- Two more triggers on webhooks live with the outbox (..._create_webhook_outbox), because
-- what they write is created there: pending deliveries are cancelled when their endpoint is
-- disabled or deleted.

create table public.webhook_trigger_types (
  name        text primary key
              constraint webhook_trigger_types_name_upper_snake check (name ~ '^[A-Z][A-Z0-9_]*$'),
  description text not null
);
comment on table public.webhook_trigger_types is 'Events a webhook can subscribe to (UPPER_SNAKE names).';

insert into public.webhook_trigger_types (name, description) values
  ('PROCESS_CREATED', 'A process was created'),
  ('PROCESS_REVISED', 'A process definition changed and its revision was bumped by update_process_revision'),
  ('PROCESS_DELETED', 'A process was deleted'),
  ('WEBHOOK_TEST',    'A test event sent on demand with send_test_webhook');

create table public.webhooks (
  id              uuid primary key default gen_random_uuid(),
  company_id      uuid not null references public.companies (id) on delete cascade,
  trigger_type    text not null references public.webhook_trigger_types (name),
  url             text not null,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  is_active       boolean not null default true,
  description     text constraint webhooks_description_length check (char_length(description) <= 500),
  disabled_reason text,
  disabled_at     timestamptz,
  failing_since   timestamptz,
  constraint webhooks_company_trigger_url_key unique (company_id, trigger_type, url),
  constraint webhooks_url_length check (char_length(url) <= 2048),
  constraint webhooks_url_scheme check (url ~* '^https?://'),
  constraint webhooks_url_no_credentials check (url !~ '^[^:/?#]+://[^/?#]*@'),
  constraint webhooks_url_no_fragment check (position('#' in url) = 0),
  constraint webhooks_url_wellformed check (
    url ~* '^https?://(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?([/?][^[:space:]]*)?$'
  )
);
comment on table public.webhooks is
  'Endpoints registered by company ADMINs. Only an active ADMIN of the company can see or change them (RLS).';
comment on constraint webhooks_url_length on public.webhooks is 'url must be at most 2048 characters';
comment on constraint webhooks_url_scheme on public.webhooks is 'url must start with http:// or https://';
comment on constraint webhooks_url_no_credentials on public.webhooks is 'url must not contain user:password@';
comment on constraint webhooks_url_no_fragment on public.webhooks is 'url must not contain a #fragment';
comment on constraint webhooks_url_wellformed on public.webhooks is
  'url must be an absolute URL with a host name or IP, an optional port (1-65535) and no spaces';
create index webhooks_company_trigger_idx on public.webhooks (company_id, trigger_type) where is_active;

-- Deployment settings, one row. allow_plain_http is false on a real project (https only)
-- and set to true by the local seed so tests can use local http receivers.
create table private.webhook_settings (
  id                 boolean primary key default true constraint webhook_settings_single_row check (id),
  allow_plain_http   boolean not null default false,
  dispatcher_url     text,
  dispatcher_key     text
);
insert into private.webhook_settings default values;
comment on table private.webhook_settings is
  'Deployment knobs: allow_plain_http, and the dispatcher URL/key used by the pg_net wake-up when Vault is absent.';

create function private.tg_webhooks__guard_row()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and new.company_id is distinct from old.company_id then
    raise exception 'a webhook cannot move to another company'
      using errcode = '42501', hint = 'Delete it and create it in the other company.';
  end if;

  -- Re-enabling an endpoint clears the reason it was disabled for.
  if new.is_active and (tg_op = 'INSERT' or not old.is_active) then
    new.disabled_reason := null;
    new.disabled_at := null;
    new.failing_since := null;
  elsif not new.is_active and (tg_op = 'INSERT' or old.is_active) then
    new.disabled_at := now();
    new.disabled_reason := coalesce(new.disabled_reason, 'disabled by an admin');
  end if;
  return new;
end;
$$;

create trigger guard_row
  before insert or update on public.webhooks
  for each row execute function private.tg_webhooks__guard_row();

-- The one url rule that cannot be a CHECK: it depends on a deployment setting, and it is
-- checked only when a url is set, so switching the setting off later never makes existing
-- rows impossible to edit or disable. It reports itself like the constraints do: the
-- trigger's name is the constraint name in the error, and its comment is the rule, as the
-- webhooks_url_* constraints' comments are theirs (src/database.rules.ts is generated from
-- both). security definer: it reads private.webhook_settings, which API roles cannot see.
create function private.tg_webhooks__require_https_url()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if (tg_op = 'INSERT' or new.url is distinct from old.url)
     and new.url ~* '^http://'
     and not (select s.allow_plain_http from private.webhook_settings s) then
    -- The constraint name is in the message too: PostgREST does not pass it on.
    raise exception 'webhook url must use https (%): %', tg_name, new.url
      using errcode = '23514', constraint = tg_name,
            hint = 'Use an https:// URL (plain http is allowed only where private.webhook_settings.allow_plain_http is true).';
  end if;
  return new;
end;
$$;

create trigger webhooks_url_https_required
  before insert or update of url on public.webhooks
  for each row execute function private.tg_webhooks__require_https_url();
comment on trigger webhooks_url_https_required on public.webhooks is 'url must use https:// on this deployment';

create trigger set_updated_at
  before update on public.webhooks
  for each row execute function private.tg_set_updated_at();

-- Signing secrets ----------------------------------------------------------------------

create table private.webhook_secrets (
  webhook_id                 uuid primary key references public.webhooks (id) on delete cascade,
  secret                     text not null constraint webhook_secrets_format check (secret ~ '^whsec_[A-Za-z0-9+/=]{32,}$'),
  previous_secret            text constraint webhook_secrets_previous_format check (previous_secret ~ '^whsec_[A-Za-z0-9+/=]{32,}$'),
  previous_secret_expires_at timestamptz,
  rotated_at                 timestamptz
);
comment on table private.webhook_secrets is
  'One signing secret per webhook (32 random bytes), plus the rotated-out one during its 24 h overlap.';

create function private.new_webhook_secret()
returns text
language sql
volatile
set search_path = ''
as $$
  select 'whsec_' || encode(extensions.gen_random_bytes(32), 'base64')
$$;

create function private.tg_webhooks__create_secret()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.webhook_secrets (webhook_id, secret)
  values (new.id, private.new_webhook_secret());
  return null;
end;
$$;

create trigger create_secret
  after insert on public.webhooks
  for each row execute function private.tg_webhooks__create_secret();

-- Signing secrets of a webhook, current first, then the rotated-out one while its overlap lasts.
create function private.webhook_signing_secrets(webhook_id uuid)
returns text[]
language sql
stable
set search_path = ''
as $$
  select array_remove(array[
           s.secret,
           case when s.previous_secret_expires_at > now() then s.previous_secret end
         ], null)
    from private.webhook_secrets s
   where s.webhook_id = webhook_signing_secrets.webhook_id
$$;

revoke execute on function private.tg_webhooks__guard_row(), private.tg_webhooks__require_https_url(),
                           private.new_webhook_secret(),
                           private.tg_webhooks__create_secret(), private.webhook_signing_secrets(uuid)
  from public;

-- Row-level security: only an active ADMIN of the company, for every operation. Column
-- grants: company_id is written only on insert (a trigger refuses moving a webhook even for
-- the service role), and the disable bookkeeping belongs to the dispatcher.
alter table public.webhook_trigger_types enable row level security;
alter table public.webhooks enable row level security;
revoke all on public.webhook_trigger_types, public.webhooks from anon, authenticated;

-- webhook_trigger_types: a catalogue every signed-in user may read.
grant select on public.webhook_trigger_types to authenticated;
create policy "Signed-in users can view webhook trigger types"
  on public.webhook_trigger_types for select to authenticated
  using (true);

grant select, delete on public.webhooks to authenticated;
grant insert (id, company_id, trigger_type, url, is_active, description) on public.webhooks to authenticated;
grant update (trigger_type, url, is_active, description) on public.webhooks to authenticated;
create policy "Admins can view their company's webhooks"
  on public.webhooks for select to authenticated
  using (company_id = (select private.admin_company_id()));
create policy "Admins can create webhooks in their company"
  on public.webhooks for insert to authenticated
  with check (company_id = (select private.admin_company_id()));
create policy "Admins can edit their company's webhooks"
  on public.webhooks for update to authenticated
  using (company_id = (select private.admin_company_id()))
  with check (company_id = (select private.admin_company_id()));
create policy "Admins can delete their company's webhooks"
  on public.webhooks for delete to authenticated
  using (company_id = (select private.admin_company_id()));

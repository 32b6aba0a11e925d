-- Signing secrets (Standard Webhooks `whsec_<base64>`), kept in the private schema so no
-- plain select through the API can return them. Rotation keeps the previous secret for a
-- 24-hour overlap; the dispatcher signs with both while it lasts.

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

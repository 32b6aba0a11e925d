-- Webhook URLs on ports that hosted Supabase blocks outbound (25 and 587: Edge Functions
-- "Outgoing connections to ports 25 and 587 are not allowed") are refused up front, with
-- a named rule, instead of failing every attempt for days and disabling the endpoint.
--
-- private.webhook_settings.hosted says whether the dispatcher runs on hosted Supabase.
-- It defaults to true: a real project gets the rule without doing anything, and a wrong
-- "true" elsewhere only refuses two mail ports. Self-hosted deployments whose workers may
-- reach those ports set it to false; the local seed does.

alter table private.webhook_settings
  add column hosted boolean not null default true;
comment on column private.webhook_settings.hosted is
  'True when the dispatcher runs on hosted Supabase, whose Edge Functions cannot connect to ports 25 and 587: webhook urls on those ports are refused (webhooks_url_port_blocked).';

-- The explicit port of a url, or null (no port, or not a url the well-formed rule accepts:
-- that rule names the problem then). Only a port right after the host counts, so
-- "https://h:25@x/" is not port 25 (it is refused for its user:password@ instead).
create function private.webhook_url_port(url text)
returns integer
language sql
immutable
set search_path = ''
as $$
  select (regexp_match(url, '^https?://(?:\[[0-9a-f:.]+\]|[a-z0-9.-]+):([0-9]{1,5})(?:[/?]|$)', 'i'))[1]::integer
$$;
revoke execute on function private.webhook_url_port(text) from public, anon, authenticated;

-- security definer: it reads private.webhook_settings, which API roles cannot see.
create function private.tg_webhooks__refuse_blocked_ports()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  port integer := private.webhook_url_port(new.url);
begin
  -- Checked when a url is set, like the https rule: turning the setting on later never
  -- makes existing rows impossible to edit or disable.
  if port in (25, 587)
     and (tg_op = 'INSERT' or new.url is distinct from old.url)
     and (select s.hosted from private.webhook_settings s) then
    -- The constraint name is in the message too: PostgREST does not pass it on.
    raise exception 'webhook url port % is blocked outbound on hosted Supabase (webhooks_url_port_blocked): %', port, new.url
      using errcode = '23514', constraint = 'webhooks_url_port_blocked',
            hint = 'Supabase Edge Functions cannot connect to ports 25 and 587: use another port.';
  end if;
  return new;
end;
$$;
revoke execute on function private.tg_webhooks__refuse_blocked_ports() from public, anon, authenticated;

-- Named like the rule, with the rule's sentence as its comment: the client module's
-- wording is generated from it (scripts/lib/rules.mjs), as for webhooks_url_https_required.
create trigger webhooks_url_port_blocked
  before insert or update of url on public.webhooks
  for each row execute function private.tg_webhooks__refuse_blocked_ports();
comment on trigger webhooks_url_port_blocked on public.webhooks is
  'url must not use port 25 or 587 (hosted Supabase blocks them outbound)';

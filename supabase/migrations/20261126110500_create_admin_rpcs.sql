-- Admin RPCs (public contract). Each is security definer because it must write the
-- outbox or read secrets, and therefore checks itself that the caller is an active
-- ADMIN of the webhook's company (or the service role). A webhook that does not exist
-- and one of another company give the same error, so ids cannot be probed.

create function private.managed_webhook(webhook_id uuid)
returns public.webhooks
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  found_webhook public.webhooks;
begin
  select * into found_webhook from public.webhooks w where w.id = managed_webhook.webhook_id;
  if found_webhook.id is null or private.can_manage_company(found_webhook.company_id) is not true then
    raise exception 'webhook % does not exist or you are not an active ADMIN of its company', webhook_id
      using errcode = '42501';
  end if;
  return found_webhook;
end;
$$;

-- For the RPCs that create deliveries: FOR SHARE makes a concurrent disable wait for
-- the caller's transaction and then cancel what it created (see enqueue_webhook_event).
create function private.require_active(webhook public.webhooks)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform 1 from public.webhooks w where w.id = webhook.id for share;
  select * into webhook from public.webhooks w where w.id = webhook.id;
  if not webhook.is_active then
    raise exception 'webhook % is disabled (%)', webhook.id, coalesce(webhook.disabled_reason, 'no reason given')
      using errcode = '55000', hint = 'Enable it first: update webhooks set is_active = true.';
  end if;
end;
$$;

create function public.send_test_webhook(webhook_id uuid)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  target public.webhooks := private.managed_webhook(webhook_id);
  test_event uuid;
  delivery uuid;
begin
  perform private.require_active(target);
  test_event := private.insert_webhook_event(
    target.company_id, 'WEBHOOK_TEST',
    jsonb_build_object('webhook_id', target.id,
                       'subscribed_trigger_type', target.trigger_type,
                       'message', 'Test event sent from Serial'),
    array[target.id]);
  select d.id into delivery from public.webhook_deliveries d where d.event_id = test_event;
  return delivery;
end;
$$;
comment on function public.send_test_webhook(uuid) is
  'Sends a WEBHOOK_TEST event to one endpoint now. Returns the delivery id (the webhook-id header).';

create function public.redeliver_webhook_delivery(delivery_id uuid)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  original public.webhook_deliveries;
  target public.webhooks;
  delivery uuid;
begin
  select * into original from public.webhook_deliveries d where d.id = redeliver_webhook_delivery.delivery_id;
  if original.id is null or private.can_manage_company(original.company_id) is not true then
    raise exception 'delivery % does not exist or you are not an active ADMIN of its company', delivery_id
      using errcode = '42501';
  end if;
  if original.webhook_id is null then
    raise exception 'the endpoint of delivery % was deleted', delivery_id using errcode = '55000';
  end if;
  target := private.managed_webhook(original.webhook_id);
  perform private.require_active(target);

  insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, redelivery_of)
  values (original.company_id, original.event_id, original.webhook_id, now(), original.id)
  returning id into delivery;
  return delivery;
end;
$$;
comment on function public.redeliver_webhook_delivery(uuid) is
  'Sends the event of a delivery again to the same endpoint as a new delivery (new webhook-id, redelivery_of set). Returns its id.';

create function public.replay_webhook_deliveries(webhook_id uuid, since timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  target public.webhooks := private.managed_webhook(webhook_id);
  replayed integer;
begin
  if since is null or since > now() then
    raise exception 'since must be a time in the past, got %', coalesce(since::text, 'null')
      using errcode = '22023';
  end if;
  perform private.require_active(target);

  -- Every event since then that this endpoint never received and is not still trying to.
  with lost as (
    select d.event_id
      from public.webhook_deliveries d
     where d.webhook_id = target.id
       and d.created_at >= since
     group by d.event_id
    having bool_and(d.state in ('failed', 'cancelled'))
  ), inserted as (
    insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at)
    select target.company_id, lost.event_id, target.id, now() from lost
    returning 1
  )
  select count(*) into replayed from inserted;
  return replayed;
end;
$$;
comment on function public.replay_webhook_deliveries(uuid, timestamptz) is
  'Re-sends to one endpoint every event since the given time whose deliveries all failed or were cancelled. Returns how many.';

create function public.get_webhook_secret(webhook_id uuid)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select s.secret
    from private.webhook_secrets s
   where s.webhook_id = (private.managed_webhook(get_webhook_secret.webhook_id)).id
$$;
comment on function public.get_webhook_secret(uuid) is 'The current signing secret (whsec_...) of a webhook.';

create function public.rotate_webhook_secret(webhook_id uuid)
returns text
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  target public.webhooks := private.managed_webhook(webhook_id);
  fresh text := private.new_webhook_secret();
begin
  update private.webhook_secrets s
     set previous_secret = s.secret,
         previous_secret_expires_at = now() + interval '24 hours',
         secret = fresh,
         rotated_at = now()
   where s.webhook_id = target.id;
  return fresh;
end;
$$;
comment on function public.rotate_webhook_secret(uuid) is
  'Replaces the signing secret and returns the new one; the old one keeps signing alongside for 24 hours.';

revoke execute on function private.managed_webhook(uuid), private.require_active(public.webhooks) from public;
-- Signed-in users call the RPCs (each checks the caller itself), trusted backends too; anon never.
revoke execute on function public.send_test_webhook(uuid), public.redeliver_webhook_delivery(uuid),
                           public.replay_webhook_deliveries(uuid, timestamptz),
                           public.get_webhook_secret(uuid), public.rotate_webhook_secret(uuid)
  from public, anon;
grant execute on function public.send_test_webhook(uuid), public.redeliver_webhook_delivery(uuid),
                          public.replay_webhook_deliveries(uuid, timestamptz),
                          public.get_webhook_secret(uuid), public.rotate_webhook_secret(uuid)
  to authenticated, service_role;

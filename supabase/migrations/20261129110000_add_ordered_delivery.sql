-- Ordered delivery, an endpoint's opt-in (public.webhooks.delivery_order = 'ordered').
--
-- The promise: for an ordered endpoint, deliveries of one ordering key are sent one at a
-- time, in the order they were created; the next one of a key is not attempted until the
-- previous one has ended (succeeded, failed after its last retry, or cancelled). The key
-- is the process for process events (a process's events in order; different processes in
-- parallel); events without a natural key are ordered per endpoint.
--
-- Creation order is commit order for process events: two transactions that change the
-- same process serialize on its row, so the second creates its event after the first
-- committed. Events created in one transaction are ordered as they were created in it.
-- Events without a natural key from concurrent transactions are ordered as created, which
-- can differ from the order of their commits.
--
-- A redelivery or replay is a new delivery, created now: it waits behind the deliveries of
-- its key already pending and keeps one-at-a-time, but an old event then arrives after
-- newer ones of the same key (receivers should compare revisions, as with any retry).
--
-- How: the business path gives each delivery to an ordered endpoint its ordering key and
-- a sequence number. A claim sends only the earliest pending delivery of a key, and parks
-- the others it finds due ('infinity'); recording the end of a delivery releases the next
-- one of its key (see the per-endpoint scheduling migration for both).

alter table public.webhooks
  add column delivery_order text not null default 'parallel'
    constraint webhooks_delivery_order_valid check (delivery_order in ('parallel', 'ordered'));
comment on column public.webhooks.delivery_order is
  'parallel (default): deliveries go out concurrently. ordered: deliveries of one ordering key (the process, for process events) go one at a time, in the order they were created.';
comment on constraint webhooks_delivery_order_valid on public.webhooks is 'delivery_order must be parallel or ordered';
grant insert (delivery_order), update (delivery_order) on public.webhooks to authenticated;

alter table public.webhook_events add column ordering_key text;
comment on column public.webhook_events.ordering_key is
  'What ordered endpoints order by: the process id for process events; null (one order per endpoint) otherwise.';

create sequence private.webhook_delivery_ordering_seq;
comment on sequence private.webhook_delivery_ordering_seq is
  'Creation order of deliveries to ordered endpoints (webhook_deliveries.ordering_seq).';

-- Assigning the order ------------------------------------------------------------------

-- What an event is ordered by: its process for process events; nothing (one order per
-- endpoint) for events without a process.
create function private.event_ordering_key(data jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return data ->> 'process_id';
end;
$$;
revoke execute on function private.event_ordering_key(jsonb) from public;

-- Every statement that creates deliveries goes through here: one event, its endpoints.
-- An ordered endpoint's delivery gets the event's key ('' for one order per endpoint) and
-- the next number of the sequence; a parallel one's gets neither. Set-based, one call per
-- event, so the business path pays per event, not per delivery (plpgsql: its plan is kept
-- for the session, see the plan-once migration).
create function private.insert_deliveries(
  company_id uuid,
  event_id uuid,
  event_key text,
  webhook_ids uuid[],
  redelivery_of uuid default null
)
returns setof uuid
language plpgsql
volatile
set search_path = ''
as $$
begin
  return query
  insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, redelivery_of,
                                         ordering_key, ordering_seq)
  select insert_deliveries.company_id, insert_deliveries.event_id, w.id, now(), insert_deliveries.redelivery_of,
         case when w.delivery_order = 'ordered' then coalesce(insert_deliveries.event_key, '') end,
         case when w.delivery_order = 'ordered' then nextval('private.webhook_delivery_ordering_seq') end
    from unnest(insert_deliveries.webhook_ids) as target(id)
    join public.webhooks w on w.id = target.id
  returning id;
end;
$$;
revoke execute on function private.insert_deliveries(uuid, uuid, text, uuid[], uuid) from public;

create or replace function private.insert_webhook_event(
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
  key text;
  body jsonb;
  body_bytes integer;
begin
  body := jsonb_build_object(
    'type', trigger_type,
    'timestamp', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'company_id', company_id,
    'data', coalesce(data, '{}'::jsonb)
  );
  -- Measured on the text receivers get (jsonb's own size says nothing about it: the
  -- number 1e100000 is a few bytes of jsonb and 100,001 characters of text).
  body_bytes := octet_length(body::text);
  if body_bytes > private.webhook_payload_limit_bytes() then
    raise exception 'webhook payload is % bytes; the limit is % bytes (256 KB)',
      body_bytes, private.webhook_payload_limit_bytes()
      using errcode = '54000', hint = 'Send identifiers and let the receiver fetch large data.';
  end if;

  key := private.event_ordering_key(data);
  insert into public.webhook_events (id, company_id, trigger_type, payload, ordering_key)
  values (event_id, insert_webhook_event.company_id, insert_webhook_event.trigger_type, body, key);
  perform private.insert_deliveries(insert_webhook_event.company_id, event_id, key, webhook_ids);

  return event_id;
end;
$$;

create or replace function public.redeliver_webhook_delivery(delivery_id uuid)
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

  select private.insert_deliveries(original.company_id, original.event_id, ev.ordering_key,
                                   array[original.webhook_id], original.id)
    into delivery
    from public.webhook_events ev
   where ev.id = original.event_id;
  return delivery;
end;
$$;

-- Replayed events go in the order they were created.
create or replace function public.replay_webhook_deliveries(webhook_id uuid, since timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  target public.webhooks := private.managed_webhook(webhook_id);
  lost record;
  replayed integer;
begin
  if since is null or since > now() then
    raise exception 'since must be a time in the past, got %', coalesce(since::text, 'null')
      using errcode = '22023';
  end if;
  perform private.require_active(target);

  -- Every event since then that this endpoint never received and is not still trying to,
  -- in the order they were created.
  replayed := 0;
  for lost in
    select ev.id, ev.ordering_key
      from public.webhook_events ev
     where ev.id in (select d.event_id
                       from public.webhook_deliveries d
                      where d.webhook_id = target.id
                        and d.created_at >= since
                      group by d.event_id
                     having bool_and(d.state in ('failed', 'cancelled')))
     order by ev.created_at, ev.id
  loop
    perform private.insert_deliveries(target.company_id, lost.id, lost.ordering_key, array[target.id]);
    replayed := replayed + 1;
  end loop;
  return replayed;
end;
$$;

-- Switching an endpoint to parallel releases what was held for order; switching it to
-- ordered applies to the deliveries created from then on.
create function private.tg_webhooks__apply_delivery_order()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.delivery_order = 'parallel' and old.delivery_order = 'ordered' then
    perform 1 from private.webhook_endpoints e where e.webhook_id = new.id for update;
    update public.webhook_deliveries d
       set ordering_key = null,
           ordering_seq = null,
           next_attempt_at = case when d.next_attempt_at = 'infinity' then now() else d.next_attempt_at end
     where d.webhook_id = new.id
       and d.state = 'pending'
       and d.ordering_key is not null;
    update private.webhook_endpoints e
       set ready_at = private.endpoint_ready_at(e, false)
     where e.webhook_id = new.id;
  end if;
  return null;
end;
$$;

revoke execute on function private.tg_webhooks__apply_delivery_order() from public;

create trigger apply_delivery_order
  after update of delivery_order on public.webhooks
  for each row execute function private.tg_webhooks__apply_delivery_order();

-- Why a pending delivery waits: the delivery of its key that goes before it, or the one of
-- its key in flight (a later one whose transaction committed first). Null for a delivery
-- in flight itself.
create function public.waiting_for(delivery public.webhook_deliveries)
returns uuid
language sql
stable
set search_path = ''
as $$
  select h.id
    from public.webhook_deliveries h
   where delivery.state = 'pending'
     and delivery.ordering_key is not null
     and not coalesce(delivery.lease_expires_at > now(), false)
     and h.webhook_id = delivery.webhook_id
     and h.ordering_key = delivery.ordering_key
     and h.state = 'pending'
     and h.id <> delivery.id
     and (h.ordering_seq < delivery.ordering_seq or h.lease_expires_at > now())
   order by h.ordering_seq
   limit 1
$$;
comment on function public.waiting_for(public.webhook_deliveries) is
  'For a delivery held by an ordered endpoint: the delivery of the same key it waits for (the earliest one still pending, or the one in flight). Null when it does not wait. Readable as a column: select=*,waiting_for';
revoke execute on function public.waiting_for(public.webhook_deliveries) from public, anon;
grant execute on function public.waiting_for(public.webhook_deliveries) to authenticated, service_role;

-- An ADMIN can end a pending delivery, e.g. the head of an ordered key that keeps failing,
-- so that the ones behind it go.
create function public.cancel_webhook_delivery(delivery_id uuid)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  target public.webhook_deliveries;
begin
  select * into target from public.webhook_deliveries d where d.id = cancel_webhook_delivery.delivery_id;
  if target.id is null or private.can_manage_company(target.company_id) is not true then
    raise exception 'delivery % does not exist or you are not an active ADMIN of its company', delivery_id
      using errcode = '42501';
  end if;
  -- Lock order: the endpoint, then its deliveries (as the dispatcher's functions).
  perform 1 from private.webhook_endpoints e where e.webhook_id = target.webhook_id for update;
  update public.webhook_deliveries d
     set state = 'cancelled',
         next_attempt_at = null,
         completed_at = now(),
         lease_owner = null,
         lease_expires_at = null,
         last_error = 'cancelled by an admin'
   where d.id = target.id
     and d.state = 'pending'
  returning * into target;
  if target.id is null then
    raise exception 'delivery % has already ended', delivery_id
      using errcode = '55000', hint = 'Only pending deliveries can be cancelled; redeliver it to send it again.';
  end if;
  -- The next delivery of its key (ordered endpoints) may go now.
  update public.webhook_deliveries d
     set next_attempt_at = now()
   where d.id = (select n.id
                   from public.webhook_deliveries n
                  where n.webhook_id = target.webhook_id
                    and n.ordering_key = target.ordering_key
                    and n.state = 'pending'
                  order by n.ordering_seq
                  limit 1)
     and d.next_attempt_at = 'infinity';
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, false)
   where e.webhook_id = target.webhook_id;
  return target.id;
end;
$$;
comment on function public.cancel_webhook_delivery(uuid) is
  'Ends a pending delivery as cancelled (an attempt in flight still finishes and is logged). For an ordered endpoint, the next delivery of its key goes next. Returns its id.';
revoke execute on function public.cancel_webhook_delivery(uuid) from public, anon;
grant execute on function public.cancel_webhook_delivery(uuid) to authenticated, service_role;

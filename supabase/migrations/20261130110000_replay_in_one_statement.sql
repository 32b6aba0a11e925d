-- A replay inserts all of its deliveries in one statement.
--
-- replay_webhook_deliveries called private.insert_deliveries once per event: one INSERT
-- statement, and so one run of the deliveries' statement trigger (a signal row, the wake-up
-- check), per event. 20,000 events took 1.8 s (91 us each) on the test machine, so a replay
-- of more than about 90,000 (a day of one event a second, after an endpoint was down for a
-- day) met the 8 s statement timeout of `authenticated` on hosted Supabase and replayed
-- nothing. An endpoint's outage is exactly when an ADMIN replays.
--
-- private.insert_deliveries now takes several events (ids and their ordering keys, in the
-- order they are to go) and their endpoints, and stays the one home of the ordering rule:
-- an ordered endpoint's delivery gets the event's key ('' for one order per endpoint) and
-- the next number of the sequence, numbered in the order the events are given; a parallel
-- one's gets neither. The business path (insert_webhook_event) and redeliver pass one event;
-- replay passes all of its events, oldest first, in one call. The one-event signature is
-- dropped; its three callers are redefined here, unchanged but for the call.
-- Tests: admin/replay-in-one-statement, ordering/redeliver-and-replay-go-to-the-back,
-- admin/rpcs.
create function private.insert_deliveries(
  company_id uuid,
  event_ids uuid[],
  event_keys text[],
  webhook_ids uuid[],
  redelivery_of uuid default null
)
returns setof uuid
language plpgsql
volatile
set search_path = ''
as $$
begin
  if cardinality(event_ids) is distinct from cardinality(event_keys) then
    raise exception 'event_ids and event_keys must be the same length, got % and %',
      cardinality(event_ids), cardinality(event_keys) using errcode = '22023';
  end if;
  -- The sequence numbers are taken outside the sorted subquery, so in its order: events as
  -- given, then endpoints.
  return query
  insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, redelivery_of,
                                         ordering_key, ordering_seq)
  select insert_deliveries.company_id, s.event_id, s.webhook_id, now(), insert_deliveries.redelivery_of,
         s.ordering_key,
         case when s.ordering_key is not null then nextval('private.webhook_delivery_ordering_seq') end
    from (select e.id as event_id, w.id as webhook_id,
                 case when w.delivery_order = 'ordered' then coalesce(e.key, '') end as ordering_key
            from unnest(insert_deliveries.event_ids, insert_deliveries.event_keys) with ordinality as e(id, key, position)
            join public.webhooks w on w.id = any (insert_deliveries.webhook_ids)
           order by e.position, w.id) s
  returning id;
end;
$$;
revoke execute on function private.insert_deliveries(uuid, uuid[], text[], uuid[], uuid) from public;

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
  perform private.insert_deliveries(insert_webhook_event.company_id, array[event_id], array[key], webhook_ids);

  return event_id;
end;
$$;
revoke execute on function private.insert_webhook_event(uuid, text, jsonb, uuid[]) from public;

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

  select private.insert_deliveries(original.company_id, array[original.event_id], array[ev.ordering_key],
                                   array[original.webhook_id], original.id)
    into delivery
    from public.webhook_events ev
   where ev.id = original.event_id;
  return delivery;
end;
$$;

-- Replayed events go in the order they were created, in one statement.
create or replace function public.replay_webhook_deliveries(webhook_id uuid, since timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  target public.webhooks := private.managed_webhook(webhook_id);
  lost_ids uuid[] := array(select private.replayable_webhook_events(target.id, since));
  event_ids uuid[];
  event_keys text[];
  replayed integer;
begin
  perform private.require_active(target);
  select array_agg(ev.id order by ev.created_at, ev.id), array_agg(ev.ordering_key order by ev.created_at, ev.id)
    into event_ids, event_keys
    from public.webhook_events ev
   where ev.id = any (lost_ids);
  select count(*)::integer into replayed
    from private.insert_deliveries(target.company_id, coalesce(event_ids, '{}'), coalesce(event_keys, '{}'), array[target.id]);
  return replayed;
end;
$$;

drop function private.insert_deliveries(uuid, uuid, text, uuid[], uuid);

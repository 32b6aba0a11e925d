-- A rate-limited endpoint's bucket keeps its own clock and its level across a change of
-- rate, and a new url's start is taken once its lock is held (review of
-- 20261130220000-220200).
--
-- - endpoint_ready_at measured the wait for tokens from now(). A claim that began later may
--   have stored the bucket's clock ahead of that now() (it never moves back, 20261130220200);
--   the bucket refills only from its clock, so a record or a record-and-claim that began
--   earlier set ready_at too soon, and claims visited the endpoint and took nothing until the
--   clock came. The wait now counts from the later of now() and the bucket's clock.
-- - Any change of the rate refilled the bucket to full. Lowering the rate of a backlogged
--   endpoint, or changing it back and forth, sent a full bucket at once each time, on top of
--   what was in flight. A change now keeps how full the bucket is (its share of the old
--   capacity, of the new one). A first rate still starts full; no rate, no bucket.
-- - A new url's receiver_since was now(), the start of the ADMIN's transaction. A claim
--   made after that start, and before the change took the endpoint's lock, leased requests
--   to the old url that then counted for the new one (a 410 Gone from the old host would
--   disable the endpoint with its new url). It is clock_timestamp() once the lock is held.
-- A release (release_deliveries: a dispatcher giving back what it claimed and never sent)
-- still gives no tokens back, on purpose: tokens handed back while the bucket has refilled
-- meanwhile would let a second see the rate plus two tenths, past the bound the README
-- promises (rate plus a tenth). The endpoint waits at most a bucket's refill for them.
-- The rest as before (20261130200000 for the trigger, 20261130220200 for endpoint_ready_at).
-- Tests: supabase/tests/scheduling/endpoint-own-rate.test.sql,
-- supabase/tests/scheduling/endpoint-concurrency-adapts.test.sql.

create or replace function private.endpoint_ready_at(endpoint private.webhook_endpoints, served boolean)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  cap integer := private.endpoint_concurrency(endpoint.concurrency_limit, endpoint.max_concurrent_requests);
  in_flight integer;
  first_expiry timestamptz;
  earliest timestamptz;
  ready timestamptz;
  tokens double precision := private.endpoint_rate_tokens(endpoint);
  needed double precision;
begin
  select count(*)::integer, min(d.lease_expires_at) into in_flight, first_expiry
    from public.webhook_deliveries d
   where d.webhook_id = endpoint.webhook_id
     and d.state = 'pending'
     and d.lease_owner is not null
     and d.lease_expires_at > now();

  -- 'infinity' marks an ordered delivery held behind an earlier one of its key.
  select min(d.next_attempt_at) into earliest
    from public.webhook_deliveries d
   where d.webhook_id = endpoint.webhook_id
     and d.state = 'pending'
     and d.next_attempt_at < 'infinity';

  if earliest is null then
    return null;
  elsif endpoint.circuit_opened_at is not null then
    ready := case when in_flight > 0 then first_expiry else greatest(endpoint.next_probe_at, earliest) end;
  elsif in_flight >= cap then
    ready := first_expiry;
  elsif served and earliest <= now() then
    ready := now();
  else
    ready := earliest;
  end if;
  -- Rate-limited: not before its bucket holds what a claim could take (a full bucket, or
  -- the slots it has free if fewer; at least one request), so that each visit takes a
  -- tenth of a second of requests rather than one. Rounded up to the microsecond: a wait
  -- rounded down would find a bucket just short of it, and take nothing.
  needed := greatest(1, least(private.endpoint_rate_capacity(endpoint.max_requests_per_second), cap - in_flight));
  if tokens < needed then
    -- From the bucket's clock when a later claim stored it ahead of now(): it refills from
    -- there, not before.
    ready := greatest(ready, greatest(now(), endpoint.rate_updated_at)
                             + make_interval(secs => ceil((needed - tokens) / endpoint.max_requests_per_second * 1e6) / 1e6));
  end if;
  return ready;
end;
$$;

create or replace function private.tg_webhooks__apply_endpoint_changes()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  change record;
  due_at timestamptz;
begin
  -- In id order: each endpoint's lock is taken at the top of its turn, so the statement
  -- takes them in increasing id order, as records do, whatever order it updated the rows in.
  for change in
    select n.id, n.disabled_reason,
           o.is_active as was_active, n.is_active,
           o.url is distinct from n.url as new_url,
           o.delivery_order as old_order, n.delivery_order,
           (o.max_concurrent_requests, o.max_requests_per_second)
             is distinct from (n.max_concurrent_requests, n.max_requests_per_second) as new_cap,
           n.max_concurrent_requests, n.max_requests_per_second
      from new_rows n
      join old_rows o on o.id = n.id
     where (o.is_active, o.url, o.delivery_order, o.max_concurrent_requests, o.max_requests_per_second)
           is distinct from (n.is_active, n.url, n.delivery_order, n.max_concurrent_requests, n.max_requests_per_second)
     order by n.id
  loop
    perform 1 from private.webhook_endpoints e where e.webhook_id = change.id for update;

    -- The ADMIN's own cap and rate, copied to where claims and records read them (first,
    -- so that what follows sees them). A lowered cap: the requests in flight above it
    -- finish, and no claim takes more until they have. A first rate starts with a full
    -- bucket (null: full); a changed one keeps how full its bucket is, as a share of the
    -- capacity (so changing it sends no burst); no rate, no bucket. Raised or removed: the
    -- endpoint may take more now. (In SET, e.* is the row before this update.)
    if change.new_cap then
      update private.webhook_endpoints e
         set max_concurrent_requests = change.max_concurrent_requests,
             max_requests_per_second = change.max_requests_per_second,
             rate_tokens = case
                             when e.max_requests_per_second is not distinct from change.max_requests_per_second then e.rate_tokens
                             when e.max_requests_per_second is null or change.max_requests_per_second is null then null
                             else private.endpoint_rate_tokens(e)
                                    / private.endpoint_rate_capacity(e.max_requests_per_second)
                                    * private.endpoint_rate_capacity(change.max_requests_per_second)
                           end,
             rate_updated_at = case
                                 when e.max_requests_per_second is not distinct from change.max_requests_per_second then e.rate_updated_at
                                 when e.max_requests_per_second is null or change.max_requests_per_second is null then null
                                 else greatest(now(), e.rate_updated_at)
                               end
       where e.webhook_id = change.id;
      -- A second statement: endpoint_ready_at must see the new cap.
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id
      returning e.ready_at into due_at;
      if due_at <= now() then
        perform private.wake_dispatchers_if_none_awake();
      end if;
    end if;

    -- Switching to parallel releases what was held for order; switching to ordered applies
    -- to the deliveries created from then on (20261129110000).
    if change.old_order = 'ordered' and change.delivery_order = 'parallel' then
      update public.webhook_deliveries d
         set ordering_key = null,
             ordering_seq = null,
             next_attempt_at = case when d.next_attempt_at = 'infinity' then now() else d.next_attempt_at end
       where d.webhook_id = change.id
         and d.state = 'pending'
         and d.ordering_key is not null;
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id;
    end if;

    -- Disabled: its pending deliveries end cancelled. Enabled again: a fresh start, its
    -- concurrency too, as the ADMIN expects (20261129140000).
    if change.was_active and not change.is_active then
      perform private.cancel_pending_deliveries(change.id, 'endpoint disabled: ' || coalesce(change.disabled_reason, 'no reason given'));
    elsif change.is_active and not change.was_active then
      -- Enabled again before the claims finished cancelling what the disable left: they
      -- cancel what was created before now, and the endpoint sends nothing until they have.
      -- (Created before this transaction began: deliveries a write made meanwhile are not
      -- the disable's.) Its schedule, which the disable cleared, is computed again: a write
      -- may have fanned out to it between the disable's cancel and now.
      update private.webhook_cancellations c
         set through = now()
       where c.webhook_id = change.id
         and c.through = 'infinity';
      update private.webhook_endpoints e
         set consecutive_failures = 0, failing_since = null,
             circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null,
             concurrency_limit = null
       where e.webhook_id = change.id;
      -- A second statement: endpoint_ready_at must see the circuit the first one closed.
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id
      returning e.ready_at into due_at;
      if due_at <= now() then
        perform private.wake_dispatchers_if_none_awake();
      end if;
    end if;

    -- A new url is a new receiver: the same fresh start (health, circuit, concurrency, no
    -- last attempt), its pending deliveries due again by their own times, a dispatcher woken
    -- for them if none is awake; requests to the old url still in flight no longer speak for
    -- its health (receiver_since; 20261129140000).
    if change.new_url then
      update private.webhook_endpoints e
         set consecutive_failures = 0, failing_since = null,
             circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null,
             concurrency_limit = null,
             last_status = null, last_error = null, last_attempt_at = null, last_success_at = null,
             -- Taken now that the endpoint's lock is held: a claim made after this
             -- transaction began, but before the lock, sent to the old url.
             receiver_since = clock_timestamp()
       where e.webhook_id = change.id;
      -- A second statement: endpoint_ready_at must see the circuit the first one closed.
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_at(e, false)
       where e.webhook_id = change.id
      returning e.ready_at into due_at;
      if due_at <= now() then
        perform private.wake_dispatchers_if_none_awake();
      end if;
    end if;
  end loop;
  return null;
end;
$$;

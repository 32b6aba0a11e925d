-- An ADMIN's change never moves an endpoint ahead in the claims' line.
--
-- Claims visit endpoints longest waiting first (ready_at), and since 20261201090400 an
-- endpoint a claim or a record has just served goes to the back of the line. But an ADMIN's
-- change to an endpoint (its cap or rate, its delivery order, its url, enabling it again)
-- and an ADMIN cancelling one of its deliveries made it ready again from its oldest due
-- delivery: for an endpoint with a backlog, long ago, so the front of the line. An ADMIN
-- could move their company's endpoints ahead of every other tenant's by setting a cap back
-- and forth, and each such edit did so by accident.
--
-- Now such a change leaves an endpoint that was waiting in line where it stood (later, if
-- the change makes it wait longer: a lowered cap, a rate), and one that was not in line (at
-- its cap, its circuit open, disabled, nothing due) joins it at the back, from now.
-- private.endpoint_ready_after_change says so, once; the trigger and the RPC use it where
-- they used endpoint_ready_at(e, false). The dispatchers' own paths are unchanged.
-- Tests: supabase/tests/scheduling/admin-changes-keep-the-place-in-line.test.sql.

create or replace function private.endpoint_ready_after_change(endpoint private.webhook_endpoints)
returns timestamptz
language sql
stable
set search_path = ''
as $$
  select case
           when r.at is null then null
           -- In line (ready_at has come): it keeps its place, or waits longer.
           when endpoint.ready_at <= now() then greatest(r.at, endpoint.ready_at)
           -- Not in line: from now if due, as a served endpoint (20261201090400).
           else private.endpoint_ready_at(endpoint, true)
         end
    from (select private.endpoint_ready_at(endpoint, false) as at) r
$$;
comment on function private.endpoint_ready_after_change(private.webhook_endpoints) is
  'Where an endpoint stands in the claims'' line after an ADMIN''s change to it (pass the row as it was, with the change applied to everything but ready_at): where it stood if it was in line, else from now. Never ahead of where it stood.';
revoke execute on function private.endpoint_ready_after_change(private.webhook_endpoints) from public;

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
         set ready_at = private.endpoint_ready_after_change(e)
       where e.webhook_id = change.id
      returning e.ready_at into due_at;
      if due_at <= now() then
        perform private.wake_dispatchers_if_none_awake();
      end if;
    end if;

    -- Switching to parallel releases what was held for order; switching to ordered applies
    -- to the deliveries created from then on (20261129110000). At most cancel_batch_size
    -- here; if there may be more, the claims release the rest, a chunk each
    -- (private.webhook_order_releases, 20261201090300).
    if change.old_order = 'ordered' and change.delivery_order = 'parallel' then
      if private.release_ordered_deliveries(change.id, 'infinity',
                                            (select s.cancel_batch_size from private.webhook_settings s), false)
         = (select s.cancel_batch_size from private.webhook_settings s) then
        -- Every keyed one while the endpoint stays parallel (a write that read it ordered
        -- may commit after this); switching back to ordered stops it at that switch.
        insert into private.webhook_order_releases as r (webhook_id, through)
        values (change.id, 'infinity')
        on conflict on constraint webhook_order_releases_pkey do update set through = 'infinity';
        perform private.wake_dispatchers_if_none_awake();
      else
        delete from private.webhook_order_releases r where r.webhook_id = change.id;
      end if;
      update private.webhook_endpoints e
         set ready_at = private.endpoint_ready_after_change(e)
       where e.webhook_id = change.id;
    elsif change.old_order = 'parallel' and change.delivery_order = 'ordered' then
      -- Ordered again before the claims finished releasing: what is created from now on
      -- keeps its key. (Created before this transaction began: a write that read the
      -- endpoint parallel created none.)
      update private.webhook_order_releases r
         set through = now()
       where r.webhook_id = change.id
         and r.through = 'infinity';
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
         set ready_at = private.endpoint_ready_after_change(e)
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
         set ready_at = private.endpoint_ready_after_change(e)
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

create or replace function public.cancel_webhook_delivery(delivery_id uuid)
returns uuid
language plpgsql
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
     set ready_at = private.endpoint_ready_after_change(e)
   where e.webhook_id = target.webhook_id;
  return target.id;
end;
$$;


-- An ADMIN's change to endpoints never deadlocks with a dispatcher recording for them.
--
-- The outbox's lock order is: endpoints' rows (private.webhook_endpoints) in webhook id
-- order, then their deliveries. record_delivery_results and release_deliveries wait for
-- their endpoints in that order; claims never wait (skip locked). Two things broke it, and
-- Postgres resolved each deadlock after a second by aborting, in every try, the ADMIN's
-- statement:
--
-- 1. The reactions to an ADMIN's change ran as row triggers, each locking its own
--    endpoint, in the order the statement reached the rows (its scan). So `update webhooks
--    set is_active = false where company_id = ...` (through PostgREST:
--    `.update({ is_active: false }).eq('company_id', c)`) could hold endpoint B and wait
--    for A while a record held A and waited for B. The same for a change of url or of
--    delivery order, and for a delete of several.
-- 2. A delete, even of one endpoint, locks its webhooks row (FOR UPDATE) before its BEFORE
--    row trigger waits for the endpoint. A record holding that endpoint updates the
--    endpoint's row more than once, and from the second update on Postgres checks the
--    row's foreign key to webhooks again (the row is now its own transaction's): FOR KEY
--    SHARE of the webhooks row, which waited for the ADMIN. (KEY SHARE does not conflict
--    with an update's lock, only with a delete's.)
--
-- Now:
-- - Updates: the three row triggers (apply_delivery_order, cancel_pending_deliveries_on_disable,
--   fresh_start_on_new_url) become one statement trigger. It visits the endpoints the
--   statement changed in id order, locking each before reacting to its change, as before
--   and in the same order per endpoint. A record's own automatic disable goes through it too and
--   locks nothing new: the record already holds that endpoint.
-- - Deletes: a statement trigger, before any row is touched, locks every endpoint of the
--   ADMIN's company in id order (a company's endpoints are few; a record for one of them
--   waits for the delete's transaction, as it would for the endpoint's own lock). A delete
--   by the service role or the database owner (no ADMIN company in the JWT) is not covered:
--   those are operators' statements, rare, and Postgres still resolves any deadlock by
--   aborting one side, losing nothing.
--
-- The foreign key stays: PostgREST embeds webhook_endpoint_health in webhooks through it
-- (the client module's listWebhooksWithHealth).

create function private.tg_webhooks__apply_endpoint_changes()
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
           o.delivery_order as old_order, n.delivery_order
      from new_rows n
      join old_rows o on o.id = n.id
     where (o.is_active, o.url, o.delivery_order) is distinct from (n.is_active, n.url, n.delivery_order)
     order by n.id
  loop
    perform 1 from private.webhook_endpoints e where e.webhook_id = change.id for update;

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
      update private.webhook_endpoints e
         set consecutive_failures = 0, failing_since = null,
             circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null,
             concurrency_limit = null
       where e.webhook_id = change.id;
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
             receiver_since = now()
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
comment on function private.tg_webhooks__apply_endpoint_changes() is
  'AFTER UPDATE (statement) on webhooks: in id order, locks each changed endpoint and reacts to its change of delivery order, is_active or url.';
revoke execute on function private.tg_webhooks__apply_endpoint_changes() from public;

drop trigger apply_delivery_order on public.webhooks;
drop trigger cancel_pending_deliveries_on_disable on public.webhooks;
drop trigger fresh_start_on_new_url on public.webhooks;
drop function private.tg_webhooks__apply_delivery_order();
drop function private.tg_webhooks__fresh_start_on_new_url();

create trigger apply_endpoint_changes
  after update on public.webhooks
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.tg_webhooks__apply_endpoint_changes();

-- An ADMIN's delete: every endpoint of their company, in id order, before the statement
-- locks any webhooks row. (The row trigger, cancel_pending_deliveries_on_delete, then finds
-- its endpoint locked already.)
create function private.tg_webhooks__lock_company_endpoints()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  company uuid := private.admin_company_id();
begin
  if company is not null then
    perform 1
       from private.webhook_endpoints e
      where e.company_id = company
      order by e.webhook_id
        for update;
  end if;
  return null;
end;
$$;
comment on function private.tg_webhooks__lock_company_endpoints() is
  'BEFORE DELETE (statement) on webhooks: an ADMIN''s delete locks their company''s endpoints in id order before any webhooks row, so it never deadlocks with a record (20261129160200).';
revoke execute on function private.tg_webhooks__lock_company_endpoints() from public;

create trigger lock_company_endpoints_before_delete
  before delete on public.webhooks
  for each statement execute function private.tg_webhooks__lock_company_endpoints();

-- The delete's row trigger, now only the delete's: its update branch moved into
-- apply_endpoint_changes above.
create or replace function private.tg_webhooks__cancel_pending_deliveries()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- When the whole company is being deleted its deliveries go with it (cascade);
  -- updating them here would trip the company foreign key.
  if exists (select 1 from public.companies c where c.id = old.company_id) then
    perform 1 from private.webhook_endpoints e where e.webhook_id = old.id for update;
    perform private.cancel_pending_deliveries(old.id, 'endpoint deleted');
  end if;
  return old;
end;
$$;
comment on function private.tg_webhooks__cancel_pending_deliveries() is
  'BEFORE DELETE (row) on webhooks: cancels the endpoint''s pending deliveries (an ADMIN''s delete has locked its company''s endpoints already).';

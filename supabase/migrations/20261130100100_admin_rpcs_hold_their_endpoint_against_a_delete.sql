-- The ADMIN RPCs that create deliveries (send_test_webhook, redeliver_webhook_delivery,
-- replay_webhook_deliveries) read their endpoint without a lock. When another ADMIN deleted
-- it meanwhile, the delivery's foreign-key check waited for that delete and then failed:
-- the caller got 'insert or update on table "webhook_deliveries" violates foreign key
-- constraint', an internal error saying nothing about what happened.
--
-- private.require_active, which all three call before creating anything, now takes FOR KEY
-- SHARE of the endpoint's row, held until the caller's transaction ends:
-- - a delete already in progress is waited for here; once it commits the endpoint is gone
--   and the caller gets the error an endpoint it may not manage gets (42501, "does not exist
--   or you are not an active ADMIN of its company", private.managed_webhook's, raised by it);
-- - a delete that comes later waits for the caller, and then cancels what it created (its
--   cancel of pending deliveries), as for any delivery the endpoint had.
-- The lock is what the deliveries' foreign-key check takes anyway, only earlier. An update
-- of the row (disable, new url) does not wait for it: a delivery created just before a
-- disable is cancelled by the next claim, as before. Nothing here locks the endpoint's
-- scheduling row, so this cannot deadlock with a delete (which locks those first).
-- Test: tests/outbox/admin-rpcs-race-a-delete.test.ts.
create or replace function private.require_active(webhook public.webhooks)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  webhook_id uuid := webhook.id;
begin
  select * into webhook from public.webhooks w where w.id = webhook_id for key share;
  if not found then
    -- Deleted since the caller read it: managed_webhook now raises its "does not exist".
    perform private.managed_webhook(webhook_id);
    -- Fails closed should it ever find the row again.
    raise exception 'webhook % changed while it was being read; try again', webhook_id using errcode = '40001';
  end if;
  if not webhook.is_active then
    raise exception 'webhook % is disabled (%)', webhook.id, coalesce(webhook.disabled_reason, 'no reason given')
      using errcode = '55000', hint = 'Enable it first: update webhooks set is_active = true.';
  end if;
end;
$$;
revoke execute on function private.require_active(public.webhooks) from public;

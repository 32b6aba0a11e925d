-- A business write never fails because an ADMIN deleted one of its endpoints meanwhile.
--
-- The subscriber query read the company's active webhooks without a lock (20261129100000).
-- If an ADMIN's delete of one of them had not committed yet, the write saw it, inserted a
-- delivery for it, and the delivery's foreign-key check (FOR KEY SHARE of the webhooks
-- row) waited for the delete. When the delete committed, the check found the row gone and
-- the write failed: "insert or update on table webhook_deliveries violates foreign key
-- constraint webhook_deliveries_webhook_id_fkey". The tenant's process update was rolled
-- back because of an endpoint, which is what the business path must never do.
--
-- The subscriber query now takes that same FOR KEY SHARE itself, in id order, while it
-- reads. A delete in progress is waited for there (as the foreign-key check waited), and
-- a row the delete removed is no longer among the targets; if the delete rolls back, the
-- endpoint gets its delivery. KEY SHARE conflicts with nothing an ADMIN's edit or a
-- disable takes (their FOR NO KEY UPDATE), so those still never wait for a write or make
-- one wait: what 20261129100000 removed FOR SHARE for. The foreign-key check that follows
-- finds the lock already held. A locking read must be volatile.

create or replace function private.subscribed_webhooks(company_id uuid, trigger_type text)
returns uuid[]
language plpgsql
volatile
set search_path = ''
as $$
begin
  return (select array_agg(s.id order by s.id)
            from (select w.id
                    from public.webhooks w
                   where w.company_id = subscribed_webhooks.company_id
                     and w.trigger_type = subscribed_webhooks.trigger_type
                     and w.is_active
                   order by w.id
                     for key share of w) s);
end;
$$;

-- The pg_net wake-up slot, taken by one transaction at a time.
--
-- claim_wakeup_slot read the stamp and then set it: transactions that read it in the same
-- instant each took the slot and each sent a wake-up ("about one per interval"). A burst
-- of 1,000 commits from 10 writers sent two in one CI run, and the coalescing test, which
-- expects one, failed. Now the slot is decided under a transaction-level advisory lock
-- that nobody waits for: a transaction that cannot take it at once skips, since another is
-- taking the slot at that moment. A committing transaction still never waits for another.
-- With wakeup_interval_ms = 0 (one wake-up per transaction) there is no slot to share and
-- no lock is taken.
--
-- The lock's key is the stamp sequence's oid (the two-integer form, second key 0), so it
-- cannot meet an application's single-bigint advisory locks.
create or replace function private.claim_wakeup_slot()
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  now_ms bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
  interval_ms integer := (select s.wakeup_interval_ms from private.webhook_settings s);
begin
  if interval_ms > 0
     and not pg_catalog.pg_try_advisory_xact_lock('private.webhook_wakeup_requested'::regclass::oid::integer, 0) then
    return false;
  end if;
  if (select r.last_value from private.webhook_wakeup_requested r) > now_ms - interval_ms then
    return false;
  end if;
  perform pg_catalog.setval('private.webhook_wakeup_requested', now_ms);
  return true;
end;
$$;

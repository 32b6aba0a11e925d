-- A delivery held back for its turn (an ordered endpoint's next_attempt_at = 'infinity')
-- that is released wakes a sleeping dispatcher, so that it goes at once.
--
-- Why: a dispatcher with nothing due sleeps until the earliest ready_at it knows of (or 30 s)
-- and only a wake-up (NOTIFY, pg_net) brings it back earlier. New deliveries wake it (the
-- wake_dispatchers trigger of the scheduling migration), but a held delivery released by an
-- ADMIN did not: cancelling the head of an ordered key (cancel_webhook_delivery) or
-- switching an endpoint back to parallel made the next ones due now, and a sleeping
-- dispatcher sent them up to 30 s later (or at its next retry), not "at once". The portal's
-- cancel button is how an ADMIN unblocks a key, so it must.
--
-- How: an AFTER UPDATE trigger on the release itself (infinity -> a time), whoever releases:
-- cancel_webhook_delivery, the switch to parallel, and the dispatcher's own promotion when a
-- head ends (that one usually runs while its dispatcher is awake, so it costs a heartbeat
-- read and sends nothing; after an attempt longer than the heartbeat's 2 s it may send one). The WHEN clause keeps every other update of a delivery (claims, records)
-- free of it. It follows the wake-up protocol of the scheduling migration: wake only when no
-- dispatcher is awake; one that is awake, or going idle, sees the released row in its next
-- or its last look, since the releasing transaction has its xid before it reads the heartbeat.

create function private.tg_webhook_deliveries__wake_when_released()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not private.dispatcher_is_awake() then
    -- NOTIFY is delivered at commit and deduplicated within a transaction; wake_dispatcher
    -- calls pg_net at most once per transaction (and per wakeup_interval_ms).
    perform pg_notify('webhook_deliveries', '');
    perform private.wake_dispatcher();
  end if;
  return null;
end;
$$;
comment on function private.tg_webhook_deliveries__wake_when_released() is
  'A held delivery (next_attempt_at = infinity) became due: wake a dispatcher if none is awake, as a new delivery does.';
revoke execute on function private.tg_webhook_deliveries__wake_when_released() from public;

create trigger wake_dispatchers_when_released
  after update of next_attempt_at on public.webhook_deliveries
  for each row
  when (old.next_attempt_at = 'infinity' and new.next_attempt_at < 'infinity' and new.state = 'pending')
  execute function private.tg_webhook_deliveries__wake_when_released();

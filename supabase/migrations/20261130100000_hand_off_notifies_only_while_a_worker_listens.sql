-- A dispatcher whose every slot is busy hands the rest of the due work off
-- (private.hand_off_work, called by the engine once per full claim). Its NOTIFY reaches
-- worker-mode dispatchers only, and NOTIFY takes, at commit, the one lock that every
-- transaction sending a NOTIFY in this database shares. Since
-- 20261129150100_notify_only_while_a_worker_listens.sql a business write sends one only
-- while a worker has said within 15 s that it listens; the hand-off now follows the same
-- rule, so where only the edge function runs (hosted Supabase: nobody listens) a busy
-- dispatcher queues no notification for nobody. The pg_net wake-up of the function stays
-- (coalesced as before). Test: tests/outbox/wake-ups.test.ts, "a hand-off".
create or replace function private.hand_off_work()
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if private.dispatcher_is_listening() then
    perform pg_notify('webhook_deliveries', 'more');
  end if;
  perform private.wake_dispatcher();
end;
$$;
revoke execute on function private.hand_off_work() from public;
grant execute on function private.hand_off_work() to service_role;

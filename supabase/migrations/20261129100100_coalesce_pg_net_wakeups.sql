-- pg_net wake-ups coalesced across transactions.
--
-- A transaction that creates deliveries wakes the edge function only when no dispatcher
-- is awake (the heartbeat, see the per-endpoint scheduling migration). Until the woken
-- function's first claim sets the heartbeat, though, every committing transaction would
-- still send its own pg_net request: a burst of 1,000 commits woke 1,000 isolates, each
-- opening database connections. Now about one request goes out per wakeup_interval_ms
-- (one second by default) for the whole database: "about", because the slot is read and
-- then set without a lock (so that no committing transaction ever waits for another), and
-- transactions that read it in the same instant each send one: a few, not a thousand.
--
-- The stamp is a sequence, not a row: reading and setting it takes no lock, and it is
-- not transactional. The cost of that: a transaction that takes the slot and then rolls
-- back sends nothing, and the commits of the next second rely on the heartbeat of a
-- dispatcher already awake, on the next wake-up after the interval, or at worst on the
-- pg_cron tick (every minute), which wakes the function whenever work is due.

alter table private.webhook_settings
  add column wakeup_interval_ms integer not null default 1000
    constraint webhook_settings_wakeup_interval_range check (wakeup_interval_ms between 0 and 60000);
comment on column private.webhook_settings.wakeup_interval_ms is
  'About one pg_net wake-up of the edge function per this many milliseconds (0: one per transaction).';

create sequence private.webhook_wakeup_requested minvalue 0 start with 0;
comment on sequence private.webhook_wakeup_requested is
  'Epoch milliseconds of the last pg_net wake-up request. Not transactional by design.';

-- True, and the slot taken, when no wake-up was requested within the interval.
create function private.claim_wakeup_slot()
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  now_ms bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
begin
  if (select r.last_value from private.webhook_wakeup_requested r)
     > now_ms - (select s.wakeup_interval_ms from private.webhook_settings s) then
    return false;
  end if;
  perform pg_catalog.setval('private.webhook_wakeup_requested', now_ms);
  return true;
end;
$$;
revoke execute on function private.claim_wakeup_slot() from public;

create or replace function private.wake_dispatcher()
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  target_url text;
  target_key text;
begin
  if to_regnamespace('net') is null then
    return;
  end if;
  if current_setting('webhooks.woken_in_xact', true) = txid_current()::text then
    return;
  end if;
  perform set_config('webhooks.woken_in_xact', txid_current()::text, true);

  -- Dynamic SQL, built with format(): these objects exist only on Supabase, and static
  -- checks (plpgsql_check) must not require them on plain Postgres.
  if to_regclass('vault.decrypted_secrets') is not null then
    execute format(
      'select max(decrypted_secret) filter (where name = %L), max(decrypted_secret) filter (where name = %L)'
      ' from %I.decrypted_secrets where name in (%L, %L)',
      'webhook_dispatcher_url', 'webhook_dispatcher_key', 'vault', 'webhook_dispatcher_url', 'webhook_dispatcher_key')
      into target_url, target_key;
  end if;
  select coalesce(target_url, s.dispatcher_url), coalesce(target_key, s.dispatcher_key)
    into target_url, target_key
    from private.webhook_settings s;
  if target_url is null then
    return;
  end if;
  -- One wake-up per interval for the whole database, not one per transaction: a burst
  -- of commits needs one woken function, which then drains them all (and, while it
  -- claims, its heartbeat stops further wake-ups altogether).
  if not private.claim_wakeup_slot() then
    return;
  end if;

  execute format('select %I.http_post(url := $1, headers := $2, body := $3, timeout_milliseconds := 10000)', 'net')
    using target_url,
          jsonb_build_object('Authorization', 'Bearer ' || coalesce(target_key, ''),
                             'Content-Type', 'application/json'),
          '{"reason":"deliveries"}'::jsonb;
end;
$$;

-- A dispatcher that has more due than it takes now (every slot busy, or the cap on one
-- invocation's deliveries reached) hands the rest off: other workers hear the NOTIFY, and
-- on Supabase another invocation of the function is woken (coalesced like any wake-up).
create function private.hand_off_work()
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform pg_notify('webhook_deliveries', 'more');
  perform private.wake_dispatcher();
end;
$$;
revoke execute on function private.hand_off_work() from public;
grant execute on function private.hand_off_work() to service_role;

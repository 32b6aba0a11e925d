-- A business write NOTIFYs only while a worker-mode dispatcher listens.
--
-- A transaction that creates deliveries while no dispatcher is awake must wake one. It did
-- both ways at once: a NOTIFY for worker-mode dispatchers (LISTEN) and a pg_net call for
-- the edge function (HTTP mode). Every NOTIFY takes Postgres's one global notify-queue lock
-- at commit, so where only the edge function runs (hosted Supabase), every such write of
-- every tenant queued on that lock for a NOTIFY nobody hears: 20 writers reached 916
-- revisions/s with it and 1,917 without (bench/README.md, "The 20-writer ratio").
--
-- Worker-mode dispatchers now say that they listen: private.note_dispatcher_listening(),
-- called when their LISTEN is in place (after every reconnect too) and every 5 s after.
-- A write NOTIFYs only if one did within the last 15 s; the pg_net wake-up is unchanged.
--
-- No wake-up is missed. A write that read "nobody listens" and commits after a worker's
-- note: the worker pokes its own loop right after each note, and the loop never sleeps
-- without first going idle, i.e. waiting for every transaction in progress to end and
-- claiming once more (the protocol of 20261129100000). So the write's deliveries are
-- claimed either by that claim or by the one after its commit. A worker whose notes stop
-- for longer than 15 s (its database unreachable) is treated as gone until its next note,
-- which is followed by the same poke.

create sequence private.webhook_listener_heartbeat minvalue 0 start with 0;
comment on sequence private.webhook_listener_heartbeat is
  'Epoch milliseconds of the last note by a worker-mode dispatcher that it LISTENs for webhook_deliveries; 0: never. Not transactional by design.';

create function private.note_dispatcher_listening()
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform pg_catalog.setval('private.webhook_listener_heartbeat', (extract(epoch from clock_timestamp()) * 1000)::bigint);
end;
$$;
comment on function private.note_dispatcher_listening() is
  'A worker-mode dispatcher says that it LISTENs on webhook_deliveries; it calls this when its LISTEN is in place and every 5 s. Business writes NOTIFY only within 15 s of the last call.';

create function private.dispatcher_is_listening()
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  return (select h.last_value > (extract(epoch from clock_timestamp()) * 1000)::bigint - 15000
            from private.webhook_listener_heartbeat h);
end;
$$;

-- As in 20261129140000, with the NOTIFY only while a worker listens.
create or replace function private.wake_dispatchers_if_none_awake()
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not private.dispatcher_is_awake() then
    -- NOTIFY is delivered at commit and deduplicated within a transaction; wake_dispatcher
    -- calls pg_net at most once per transaction (and per wakeup_interval_ms).
    if private.dispatcher_is_listening() then
      perform pg_notify('webhook_deliveries', '');
    end if;
    perform private.wake_dispatcher();
  end if;
end;
$$;

revoke execute on function private.note_dispatcher_listening(), private.dispatcher_is_listening() from public;
grant execute on function private.note_dispatcher_listening() to service_role;

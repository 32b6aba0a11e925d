-- Operators see whether a worker-mode dispatcher listens.
--
-- Since 20261129150100 a write sends its NOTIFY only while a worker has noted, within
-- 15 s, that it LISTENs (private.note_dispatcher_listening). An operator asking why
-- writes send no NOTIFY, or why a worker picks new work up only every 5 s, had to read
-- the sequence behind it. public.webhook_health now says it: dispatcher_listening (the
-- very test the writes make) and listener_heartbeat_at (the last note; null: never).
--
-- The two columns come from a function of their own, joined in the view, so that
-- private.webhook_health() (and /metrics, which reads it) keeps its signature. The view
-- gains them at its end: what selects its earlier columns by name sees no change.

create function private.dispatcher_listener()
returns table (dispatcher_listening boolean, listener_heartbeat_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  dispatcher_listening := private.dispatcher_is_listening();
  select case when h.last_value > 0 then pg_catalog.to_timestamp(h.last_value / 1000.0) end
    into listener_heartbeat_at
    from private.webhook_listener_heartbeat h;
  return next;
end;
$$;
comment on function private.dispatcher_listener() is
  'Whether a worker-mode dispatcher listens for NOTIFY (it noted so within 15 s), and when one last noted it (null: never). For public.webhook_health.';
revoke all on function private.dispatcher_listener() from public;
grant execute on function private.dispatcher_listener() to service_role;

create or replace view public.webhook_health
  with (security_invoker = true)
as
select h.*, l.dispatcher_listening, l.listener_heartbeat_at
  from private.webhook_health() h
  cross join private.dispatcher_listener() l;
comment on column public.webhook_health.dispatcher_listening is
  'A worker-mode dispatcher noted within 15 s that it LISTENs: writes that find no dispatcher awake send a NOTIFY only while this is true (pg_net wakes the edge function either way).';
comment on column public.webhook_health.listener_heartbeat_at is
  'When a worker last noted that it listens (every 5 s while it does); null: never.';

-- Operators see the cancellations that disables and deletes left to the claims.
--
-- Since 20261130140000 a disable or delete cancels at most cancel_batch_size pending
-- deliveries at once and leaves the rest to the claims (private.webhook_cancellations), a
-- chunk per claim. Until the claims have finished, those deliveries are still `pending`
-- in the log, and public.webhook_health did not say why: an operator saw pending work of a
-- disabled endpoint and could not tell a cancellation in progress from one that is stuck
-- (no dispatcher claiming). The view now says it:
-- - cancellations_in_progress: endpoints whose cancellation is unfinished;
-- - oldest_cancellation_age_seconds: how long the oldest has been waiting (0 when none;
--   claims finish 200,000 deliveries in about 7 s, so minutes mean nothing is claiming);
-- - deliveries_being_cancelled: the pending deliveries those cancellations still cover,
--   counted up to 10,000 as due_deliveries is (each through the pending index).
--
-- As in 20261129160100, the columns come from a function of their own, joined in the view
-- and added at its end, so that private.webhook_health() (and /metrics) keep their
-- signature and what selects the earlier columns by name sees no change.
-- Test: supabase/tests/outbox/health-for-operators.test.sql ("Cancellations left to the
-- claims").

create function private.webhook_cancellations_in_progress()
returns table (cancellations_in_progress bigint, oldest_cancellation_age_seconds double precision,
               deliveries_being_cancelled bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  count_limit constant integer := 10000;
begin
  select count(*), coalesce(max(extract(epoch from now() - c.requested_at)::double precision), 0)
    into cancellations_in_progress, oldest_cancellation_age_seconds
    from private.webhook_cancellations c;
  -- What the claims will cancel: each cancellation's pending deliveries under its watermark.
  select count(*)
    into deliveries_being_cancelled
    from (select 1
            from private.webhook_cancellations c
            cross join lateral (select 1
                                  from public.webhook_deliveries d
                                 where d.webhook_id = c.webhook_id
                                   and d.state = 'pending'
                                   and d.created_at < c.through
                                 -- ordered: the pending index, never a heap scan of the log
                                 order by d.next_attempt_at
                                 limit count_limit) x
           limit count_limit) pending;
  return next;
end;
$$;
comment on function private.webhook_cancellations_in_progress() is
  'Unfinished cancellations of disabled or deleted endpoints (private.webhook_cancellations), the age of the oldest, and the pending deliveries they still cover (up to 10,000). For public.webhook_health.';
revoke all on function private.webhook_cancellations_in_progress() from public;
grant execute on function private.webhook_cancellations_in_progress() to service_role;

create or replace view public.webhook_health
  with (security_invoker = true)
as
select h.*, l.dispatcher_listening, l.listener_heartbeat_at,
       c.cancellations_in_progress, c.oldest_cancellation_age_seconds, c.deliveries_being_cancelled
  from private.webhook_health() h
  cross join private.dispatcher_listener() l
  cross join private.webhook_cancellations_in_progress() c;
comment on column public.webhook_health.cancellations_in_progress is
  'Disabled or deleted endpoints whose pending deliveries the claims are still cancelling (more than cancel_batch_size were pending).';
comment on column public.webhook_health.oldest_cancellation_age_seconds is
  'How long the oldest unfinished cancellation has waited; 0 when none. Minutes: nothing is claiming.';
comment on column public.webhook_health.deliveries_being_cancelled is
  'Pending deliveries those cancellations still cover (counted up to 10,000): still pending in the log until a claim cancels them.';

-- An endpoint whose pending deliveries are still being cancelled is off the schedule.
--
-- A disable or a delete cancels cancel_batch_size pending deliveries at once and leaves the
-- rest to the claims, a chunk each (20261130140000): an endpoint enabled again before that
-- has ended sends nothing until it has. But its schedule said otherwise. The re-enable, and
-- every claim that passed over the endpoint, computed its ready_at from its oldest pending
-- delivery: one of the backlog being cancelled, so a time long past. Claims visit the
-- endpoints that waited longest first, batch_size of them: once a tenant had that many
-- endpoints in this state (a script that pauses and resumes all of them), every claim
-- visited only those, took nothing from them, and returned nothing to anyone until their
-- backlogs were cancelled, 200 deliveries a claim. Fewer of them still took places in
-- every claim's visit.
--
-- Now private.endpoint_ready_at, the schedule's one home, says null (not ready) while the
-- endpoint has an unfinished cancellation. The claims work cancellations off on their own
-- (the top of every claim: private.webhook_cancellations, oldest first) and the claim that
-- ends one schedules the endpoint again (claim_due_deliveries already computes its ready_at
-- once the cancellation's row is gone), so nothing it holds waits longer than before.
-- Test: supabase/tests/scheduling/cancel-large-backlogs-in-steps.test.sql.

create or replace function private.endpoint_ready_at(endpoint private.webhook_endpoints, served boolean)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  cap integer := private.endpoint_concurrency(endpoint.concurrency_limit, endpoint.max_concurrent_requests);
  in_flight integer;
  first_expiry timestamptz;
  earliest timestamptz;
  ready timestamptz;
  tokens double precision := private.endpoint_rate_tokens(endpoint);
  needed double precision;
begin
  -- Being cancelled: the claims' cancellation comes first, and schedules it when it ends.
  if exists (select 1 from private.webhook_cancellations c where c.webhook_id = endpoint.webhook_id) then
    return null;
  end if;

  select count(*)::integer, min(d.lease_expires_at) into in_flight, first_expiry
    from public.webhook_deliveries d
   where d.webhook_id = endpoint.webhook_id
     and d.state = 'pending'
     and d.lease_owner is not null
     and d.lease_expires_at > now();

  -- 'infinity' marks an ordered delivery held behind an earlier one of its key.
  select min(d.next_attempt_at) into earliest
    from public.webhook_deliveries d
   where d.webhook_id = endpoint.webhook_id
     and d.state = 'pending'
     and d.next_attempt_at < 'infinity';

  if earliest is null then
    return null;
  elsif endpoint.circuit_opened_at is not null then
    ready := case when in_flight > 0 then first_expiry else greatest(endpoint.next_probe_at, earliest) end;
  elsif in_flight >= cap then
    ready := first_expiry;
  elsif served and earliest <= now() then
    ready := now();
  else
    ready := earliest;
  end if;
  -- Rate-limited: not before its bucket holds what a claim could take (a full bucket, or
  -- the slots it has free if fewer; at least one request), so that each visit takes a
  -- tenth of a second of requests rather than one. Rounded up to the microsecond: a wait
  -- rounded down would find a bucket just short of it, and take nothing.
  needed := greatest(1, least(private.endpoint_rate_capacity(endpoint.max_requests_per_second), cap - in_flight));
  if tokens < needed then
    -- From the bucket's clock when a later claim stored it ahead of now(): it refills from
    -- there, not before.
    ready := greatest(ready, greatest(now(), endpoint.rate_updated_at)
                             + make_interval(secs => ceil((needed - tokens) / endpoint.max_requests_per_second * 1e6) / 1e6));
  end if;
  return ready;
end;
$$;

-- Existing endpoints in that state leave the schedule now.
update private.webhook_endpoints e
   set ready_at = null
 where e.ready_at is not null
   and exists (select 1 from private.webhook_cancellations c where c.webhook_id = e.webhook_id);

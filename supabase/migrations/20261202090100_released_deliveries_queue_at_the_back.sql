-- A dispatcher's release never moves an endpoint ahead in the claims' line.
--
-- A dispatcher gives back deliveries it leased but will not send (it is stopping, or an
-- attempt could no longer end inside its lease: release_deliveries). The release left the
-- endpoint ready from its oldest due delivery, private.endpoint_ready_at(e, false). For an
-- endpoint with a backlog that is the front of the line: the claim had just served it and
-- put it at the back, and the release put it ahead of every tenant that waited meanwhile.
-- Releases come when dispatchers are saturated or stopping, exactly when the line is long,
-- so a backlogged tenant could keep its place at the front. 20261201090400 and
-- 20261201090600 fixed the same on every other path; this one was missed (a review found it).
--
-- Now a release leaves the endpoint as a claim does (served): ready from now, at the back,
-- if its work is due and it has a free slot (the released deliveries are due now, and they
-- free their slots); otherwise as before (at its cap, its circuit, its rate).
-- Test: scheduling/release-queues-at-the-back.

create or replace function private.release_deliveries(worker text, delivery_ids uuid[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  released integer;
begin
  if worker is null or btrim(worker) = '' then
    raise exception 'worker must name the dispatcher that holds the leases' using errcode = '22023';
  end if;
  if delivery_ids is null then
    raise exception 'delivery_ids must be an array of delivery ids (empty releases nothing)' using errcode = '22023';
  end if;
  perform 1
     from private.webhook_endpoints e
    where e.webhook_id in (select d.webhook_id from public.webhook_deliveries d where d.id = any (delivery_ids))
    order by e.webhook_id
      for update;
  -- Graceful shutdown: the attempts never started, so they are not counted.
  update public.webhook_deliveries d
     set next_attempt_at  = now(),
         lease_owner      = null,
         lease_expires_at = null,
         attempt_count    = d.attempt_count - 1
   where d.id = any (delivery_ids)
     and d.state = 'pending'
     and d.lease_owner = worker;
  get diagnostics released = row_count;
  -- Served: the claim that leased them had its turn (20261202090100).
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, true)
   where e.webhook_id in (select d.webhook_id from public.webhook_deliveries d where d.id = any (delivery_ids));
  return released;
end;
$$;

-- A release gives back its deliveries even while a claim has their company in hand.
--
-- A dispatcher releases the deliveries it claimed and will not send (it is stopping, or an
-- attempt could no longer end inside its lease or budget). Since 20261204090000 a release
-- freed a company's slots only under the company's claim lock, taken without waiting, and
-- skipped the deliveries of a company another dispatcher's claim held at that moment: with
-- several dispatchers, any claim that visits any endpoint of a busy company holds it for
-- the rest of its transaction, so a release often lost some. Those deliveries then waited
-- out their lease (WEBHOOK_LEASE_SECONDS, 120 s) unsent, and the attempt number the claim
-- gave them was never sent.
--
-- The lock was there so that no freed slot goes unseen by a claim turning one of the
-- company's endpoints away at that moment (its waiting row is not committed yet). A release
-- that skips costs more than that miss: the miss is bounded (the waiting endpoint is ready
-- at the latest when the company's earliest lease runs out, and any later freed slot of the
-- company wakes it), the skip holds real deliveries for a whole lease. So a release now
-- takes only its endpoints' rows (SKIP LOCKED, as before 20261204090000: a transaction
-- holding an endpoint's row still keeps that endpoint's leases, which run out) and wakes
-- the company's waiting endpoints for the slots it freed. Records keep the company's lock:
-- a result is never lost by being kept, only recorded by the next claim.
-- Test: "a release gives back the deliveries of a company a claim has in hand" in
-- tests/outbox/company-share-across-claimers.test.ts.

create or replace function private.release_deliveries(worker text, delivery_ids uuid[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  released integer;
  held uuid[];
  freed jsonb;
begin
  if worker is null or btrim(worker) = '' then
    raise exception 'worker must name the dispatcher that holds the leases' using errcode = '22023';
  end if;
  if delivery_ids is null then
    raise exception 'delivery_ids must be an array of delivery ids (empty releases nothing)' using errcode = '22023';
  end if;
  -- SKIP LOCKED (see the top of 20261203090000): a delivery of an endpoint whose row someone
  -- else holds keeps its lease, which runs out; one whose endpoint is gone needs no row. Its
  -- company's claim lock is not asked for (see the top of this file).
  held := array(select e.webhook_id
                  from private.webhook_endpoints e
                 where e.webhook_id in (select d.webhook_id from public.webhook_deliveries d where d.id = any (delivery_ids))
                 order by e.webhook_id
                   for update skip locked);
  -- Graceful shutdown: the attempts never started, so they are not counted.
  with released_rows as (
    update public.webhook_deliveries d
       set next_attempt_at  = now(),
           lease_owner      = null,
           lease_expires_at = null,
           attempt_count    = d.attempt_count - 1
     where d.id = any (delivery_ids)
       and d.state = 'pending'
       and d.lease_owner = worker
       and (d.webhook_id = any (held)
            or not exists (select 1 from private.webhook_endpoints e where e.webhook_id = d.webhook_id))
    returning d.company_id
  ), per_company as (
    select r.company_id, count(*) as slots from released_rows r group by 1
  )
  select coalesce(sum(c.slots), 0)::integer, jsonb_agg(jsonb_build_object('company_id', c.company_id, 'slots', c.slots))
    into released, freed
    from per_company c;
  -- Their companies' slots are free too (20261204090000).
  if released > 0 and exists (select 1 from private.webhook_company_waiters) then
    perform private.wake_company_waiters(freed);
  end if;
  -- Served: the claim that leased them had its turn (20261202090100).
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, true)
   where e.webhook_id = any (held);
  return released;
end;
$$;

-- A freed slot of a company goes to an endpoint that can use it now.
--
-- An endpoint a claim turns away for its company's share waits in
-- private.webhook_company_waiters (20261204090000) until a freed slot of its company wakes
-- it, longest waiting first. While it waits, its own state may change: an ADMIN or a
-- disable cancels its deliveries, a retry moves them later, its circuit opens (the dead
-- endpoints this share is for are turned away while their circuits are still closed, and
-- their requests then time out), its own cap halves, its rate bucket is empty. A freed slot
-- still went to it, the next claim took nothing from it, and an endpoint of the same
-- company with work due kept waiting for the next freed slot (in a company whose other
-- requests hang, a timeout away) or at the latest the company's earliest lease. Rows of
-- endpoints with nothing left stayed for good (41 after one `npm run bench`), keeping every
-- record on the wake-up path.
--
-- Now wake_company_waiters walks the company's waiting endpoints, longest waiting first,
-- and asks each one's own schedule (private.endpoint_ready_at(e, true): its work due, its
-- circuit, its cap, its rate; the company's share aside) when it could take a request. Ready
-- now: woken, at the place in line it had, and it counts against the slots freed. Later, or
-- never (nothing pending): its waiting row is deleted and it goes back on its own schedule
-- (ready_at from the same function, as a record leaves an endpoint), spending no slot; when
-- it is ready and its company still at its share, the claim that meets it turns it away
-- again. Each row is deleted once, so the walk costs no more than the rows it removes plus
-- the n it wakes. As before each endpoint's row is taken with SKIP LOCKED first and one
-- someone holds is passed over (never waited for); the claim inserts and deletes waiting
-- rows only under the endpoint's row, so the two never meet on a waiting row.
-- Test: supabase/tests/scheduling/company-waiters-with-nothing-due.test.sql.

create or replace function private.wake_company_waiters(freed jsonb)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  f record;
  w record;
  endpoint private.webhook_endpoints;
  ready timestamptz;
  left_to_wake integer;
  woken uuid[] := '{}'::uuid[];
  since timestamptz[] := '{}'::timestamptz[];
  rescheduled uuid[] := '{}'::uuid[];
  rescheduled_at timestamptz[] := '{}'::timestamptz[];
begin
  -- freed: [{"company_id": ..., "slots": n}]. Per company, its n longest-waiting endpoints
  -- that could take a request now and whose rows nobody else holds. Most records free the
  -- slots of companies with nobody waiting: one index probe, and done.
  if not exists (select 1
                   from private.webhook_company_waiters c
                  where c.company_id in (select x.company_id from jsonb_to_recordset(freed) x(company_id uuid))) then
    return 0;
  end if;
  for f in select x.company_id, x.slots from jsonb_to_recordset(freed) x(company_id uuid, slots integer) loop
    left_to_wake := coalesce(f.slots, 0);
    continue when left_to_wake <= 0;
    for w in select c.webhook_id, c.since
               from private.webhook_company_waiters c
              where c.company_id = f.company_id
              order by c.since, c.webhook_id
    loop
      select * into endpoint from private.webhook_endpoints e where e.webhook_id = w.webhook_id for update skip locked;
      continue when not found;  -- someone holds it: it waits for the next freed slot
      ready := private.endpoint_ready_at(endpoint, true);
      if ready is null or ready > now() then
        rescheduled := rescheduled || w.webhook_id;
        rescheduled_at := rescheduled_at || ready;
        continue;
      end if;
      woken := woken || w.webhook_id;
      since := since || w.since;
      left_to_wake := left_to_wake - 1;
      exit when left_to_wake = 0;
    end loop;
  end loop;
  delete from private.webhook_company_waiters c where c.webhook_id = any (woken || rescheduled);
  update private.webhook_endpoints e
     set ready_at = least(coalesce(e.ready_at, s.since), s.since)
    from unnest(woken, since) s(webhook_id, since)
   where e.webhook_id = s.webhook_id;
  update private.webhook_endpoints e
     set ready_at = s.ready
    from unnest(rescheduled, rescheduled_at) s(webhook_id, ready)
   where e.webhook_id = s.webhook_id;
  return cardinality(woken);
end;
$$;
comment on function private.wake_company_waiters(jsonb) is
  'Slots of companies freed ([{company_id, slots}]): that many of each company''s waiting endpoints that could take a request now (private.endpoint_ready_at) are ready again, at the place in line they had; waiting endpoints met that could not go back on their own schedule (20261205090100).';

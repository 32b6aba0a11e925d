-- A freed slot of a company wakes an endpoint that has work due, not one that has none.
--
-- An endpoint a claim turns away for its company's share waits in
-- private.webhook_company_waiters (20261204090000) until a freed slot of its company wakes
-- it, longest waiting first. Its deliveries may end meanwhile another way: an ADMIN
-- cancels them, a disable cancels them, a retry moves them to later. Its waiting row stayed,
-- and the next freed slot of the company went to it: the slot woke an endpoint with nothing
-- to send while one with work due kept waiting (for the next slot, or at the latest the
-- company's earliest lease). Such rows also stayed for good (41 after one `npm run bench`),
-- and while the table is not empty every record and release pays for the wake-up path.
--
-- Now wake_company_waiters walks the company's waiting endpoints, longest waiting first, and
-- wakes the first n that have a delivery due; a waiting row met on the way whose endpoint
-- has nothing due is deleted (it spent no slot). Each row is deleted once, so the walk costs
-- no more than the rows it removes plus the n it wakes. As before it takes each endpoint's
-- row with SKIP LOCKED first and passes over one someone holds (never waits): the claim
-- inserts and deletes waiting rows only under the endpoint's row, so the two never meet on
-- a waiting row. "Due" is what the claim turns an endpoint away for: pending, next attempt
-- now or earlier.
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
  left_to_wake integer;
  woken uuid[] := '{}'::uuid[];
  since timestamptz[] := '{}'::timestamptz[];
  stale uuid[] := '{}'::uuid[];
begin
  -- freed: [{"company_id": ..., "slots": n}]. Per company, its n longest-waiting endpoints
  -- that have work due and whose rows nobody else holds.
  for f in select x.company_id, x.slots from jsonb_to_recordset(freed) x(company_id uuid, slots integer) loop
    left_to_wake := coalesce(f.slots, 0);
    continue when left_to_wake <= 0;
    for w in select c.webhook_id, c.since
               from private.webhook_company_waiters c
              where c.company_id = f.company_id
              order by c.since, c.webhook_id
    loop
      perform 1 from private.webhook_endpoints e where e.webhook_id = w.webhook_id for update skip locked;
      continue when not found;  -- someone holds it: it waits for the next freed slot
      if not exists (select 1
                       from public.webhook_deliveries d
                      where d.webhook_id = w.webhook_id
                        and d.state = 'pending'
                        and d.next_attempt_at <= now()) then
        stale := stale || w.webhook_id;
        continue;
      end if;
      woken := woken || w.webhook_id;
      since := since || w.since;
      left_to_wake := left_to_wake - 1;
      exit when left_to_wake = 0;
    end loop;
  end loop;
  delete from private.webhook_company_waiters c where c.webhook_id = any (woken || stale);
  update private.webhook_endpoints e
     set ready_at = least(coalesce(e.ready_at, s.since), s.since)
    from unnest(woken, since) s(webhook_id, since)
   where e.webhook_id = s.webhook_id;
  return cardinality(woken);
end;
$$;
comment on function private.wake_company_waiters(jsonb) is
  'Slots of companies freed ([{company_id, slots}]): that many of each company''s waiting endpoints that have work due are ready again, at the place in line they had; waiting rows met with nothing due are deleted (20261205090100).';

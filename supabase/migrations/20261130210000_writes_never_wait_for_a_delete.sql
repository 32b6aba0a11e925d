-- A business write never waits for a delete of one of its endpoints, so it can never
-- deadlock with one.
--
-- Since 20261129160300 the subscriber query took FOR KEY SHARE of the endpoints it fans
-- out to, in id order: a delete in progress was waited for, and the endpoint it removed
-- was left out. That lock was there for the deliveries' foreign key to webhooks, which
-- 20261130120000 dropped. What it still did was make writes and deletes wait for each
-- other, and a delete of several endpoints in one statement (an ADMIN's
-- `DELETE /webhooks?company_id=eq.X`, the service role's clean-up, a company's cascade)
-- locks them in the order its scan reaches them, not in id order. So a write holding the
-- first endpoint's key share could wait for the second, which the delete held while it
-- waited for the first: "deadlock detected" after a second, and Postgres aborted one of
-- them, possibly the tenant's process update.
--
-- Now the subscriber query reads the company's active endpoints and locks nothing. A
-- write that races a delete commits at once, with a delivery for each endpoint it saw:
-- - the delete commits first, or its cancel ran before the write committed: that delivery
--   is pending for an endpoint that no longer exists. Its signal names the endpoint, and
--   the next claim that reads the signal finds no scheduling row and cancels it
--   ('endpoint deleted'; the claim's cancellations, 20261130140000). It is never sent.
--   (The claim's comment calls that path a last line; for a write racing a delete it is
--   now the path.)
-- - the delete rolls back: the endpoint gets its delivery, as it should.
-- Nothing the write does waits: no lock on a webhooks row at all. The ADMIN RPCs (test,
-- redeliver, replay) keep their FOR KEY SHARE of their one endpoint (20261130100100):
-- one row cannot make a cycle.
-- Tests: tests/outbox/disable-race.test.ts (a write during a delete, committed or rolled
-- back; a write between a multi-endpoint delete's two locks).

create or replace function private.subscribed_webhooks(company_id uuid, trigger_type text)
returns uuid[]
language plpgsql
volatile
set search_path = ''
as $$
begin
  return (select array_agg(w.id order by w.id)
            from public.webhooks w
           where w.company_id = subscribed_webhooks.company_id
             and w.trigger_type = subscribed_webhooks.trigger_type
             and w.is_active);
end;
$$;
comment on function private.subscribed_webhooks(uuid, text) is
  'The company''s active endpoints subscribed to the trigger type, in id order. Locks nothing: a write never waits for an ADMIN''s edit or delete (deliveries created for an endpoint deleted meanwhile end cancelled at the next claim).';

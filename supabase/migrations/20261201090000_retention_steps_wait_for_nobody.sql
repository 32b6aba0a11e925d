-- A retention step never waits for a company delete, so the two never deadlock.
--
-- Before, a step (private.prune_webhook_history_step, every minute, through
-- private.prune_webhook_pages) deleted the old succeeded deliveries of its pages, then the
-- old events left without deliveries, locking rows as it met them. A company delete locks in
-- the other order: the company, its events, then their deliveries (on delete cascade). A
-- step holding a delivery of that company and then reaching one of its events waited for
-- the delete, which waited for the step: Postgres aborted one of them ("deadlock detected").
-- The same held for anything else that deletes events.
--
-- Now every row a step deletes is one it could lock at once (SKIP LOCKED); a row another
-- transaction holds is left for the next sweep. A delivery goes only together with a lock on
-- its event (FOR KEY SHARE, taken first: a company delete that has reached the event holds
-- it, and one that has not cannot reach the event's deliveries, nor its redeliveries, which
-- share the event, until the step has ended). So a step never waits for a company delete,
-- and a company delete that meets the step's rows waits for its short transaction and goes
-- on. (One wait remains: a delivery's delete clears redelivery_of on its pending
-- redeliveries, and waits for a claim or record that holds one. A claim that holds one
-- and then waits for another the step holds, to park or release it on an ordered
-- endpoint, closes a cycle, and Postgres aborts one of the two; neither loses anything.)
-- The manual catch-up, private.prune_webhook_history(), now holds the steps' cursor
-- while it runs: a step beside it could lock the other end of a delivery and its
-- redelivery, and each would wait for the other.
--
-- What is pruned does not change: the rule keeps its one home here.
-- Test: tests/outbox/prune-steps-never-wait.test.ts (and the rule's
-- supabase/tests/retention/prune-webhook-history.test.sql).

create or replace function private.prune_webhook_pages(older_than interval, first_page bigint, end_page bigint)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  cutoff timestamptz;
  first_tid tid;
  end_tid tid;
  pruned integer;
begin
  if older_than is null or older_than < interval '1 hour' then
    raise exception 'older_than must be at least 1 hour, got %', older_than using errcode = '22023';
  end if;
  if first_page is null or end_page is null or first_page < 0 or end_page < first_page then
    raise exception 'pages must be a range from 0 up, got % to %', first_page, end_page using errcode = '22023';
  end if;
  cutoff := now() - older_than;
  -- Block numbers stop at 2^32 - 1.
  first_tid := format('(%s,0)', least(first_page, 4294967295))::tid;
  end_tid := format('(%s,0)', least(end_page, 4294967295))::tid;

  -- The event's lock in a lateral subquery, by its key, one delivery at a time: it comes
  -- before the delivery's, and the events table is never joined whole.
  delete from public.webhook_deliveries d
   where d.ctid = any (array(
           select p.ctid
             from public.webhook_deliveries p
            cross join lateral (select 1
                                  from public.webhook_events e
                                 where e.id = p.event_id
                                   for key share skip locked) held_event
            where p.ctid >= first_tid and p.ctid < end_tid
              and p.state = 'succeeded'
              and p.completed_at < cutoff
              for update of p skip locked));
  get diagnostics pruned = row_count;

  delete from public.webhook_events e
   where e.ctid = any (array(
           select v.ctid
             from public.webhook_events v
            where v.ctid >= first_tid and v.ctid < end_tid
              and v.created_at < cutoff
              and not exists (select 1 from public.webhook_deliveries d where d.event_id = v.id)
              for update of v skip locked));
  return pruned;
end;
$$;
comment on function private.prune_webhook_pages(interval, bigint, bigint) is
  'What retention deletes, in heap pages [first_page, end_page) of webhook_deliveries and webhook_events: succeeded deliveries completed longer ago than older_than (with their attempts), then events older than that left without deliveries. Rows another transaction holds are skipped (the next sweep takes them): it never waits. Returns deliveries pruned.';

create or replace function private.prune_webhook_history(older_than interval default interval '30 days')
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  -- Every page, in this one transaction: a manual catch-up. It holds the steps' cursor (it
  -- waits for a step that runs), so that no step runs beside it. The schedule runs the steps.
  perform 1 from private.webhook_prune_cursor c for update;
  return private.prune_webhook_pages(older_than, 0, 4294967295);
end;
$$;

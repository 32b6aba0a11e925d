-- The claim's signal delete is planned once per session, not at every claim.
--
-- private.consume_endpoint_signals (20261130130000) was written in SQL. A SQL function
-- that cannot be inlined (this one sets settings and deletes) is planned again at every
-- call: PostgreSQL 15 keeps no plan for it. Every claim that had a candidate endpoint paid
-- that planning, 0.16 ms of a claim of one delivery of about 0.6 ms (pg_stat_user_functions
-- on the test machine: 0.21 ms per call in SQL, 0.045 ms in PL/pgSQL, which keeps its
-- plans for the session as the claim and the record do since 20261129150200). A claim of
-- one is the whole of the path from a write to its request at a low rate, so this is
-- latency, not only throughput.
--
-- The same statement, the same settings (the plan stays a plain index scan, see
-- 20261130130000), in PL/pgSQL. Nothing else changes.
-- Test: supabase/tests/dispatcher/claim-due-deliveries.test.sql ("Planned once per
-- session"): no function the claim or the record calls is one that is planned at every call.
create or replace function private.consume_endpoint_signals(candidates uuid[], picked uuid[])
returns uuid[]
language plpgsql
volatile
set search_path = ''
set enable_bitmapscan = off
set enable_seqscan = off
as $$
declare
  orphans uuid[];
begin
  -- SKIP LOCKED: a signal of a missing endpoint that another claim is deleting is its to
  -- handle; a claim never waits for another.
  with gone as (
    delete from private.webhook_endpoint_signals s
     where s.id = any (array(select l.id
                               from private.webhook_endpoint_signals l
                              where l.webhook_id = any (candidates)
                                and (l.webhook_id = any (picked)
                                     or not exists (select 1 from private.webhook_endpoints e where e.webhook_id = l.webhook_id))
                                for update skip locked))
    returning s.webhook_id
  )
  select array_agg(distinct g.webhook_id) into orphans
    from gone g
   where not g.webhook_id = any (picked);
  return orphans;
end;
$$;

-- The dispatcher's round trip plans its statements once per session, not at every call.
--
-- plpgsql keeps each statement's plan for the session, but a statement with parameters gets
-- a custom plan, made for that call's values, until the plan cache decides that its generic
-- plan is no worse. Five statements of the claim and the record never passed that test
-- (each compares a column with `= any (<array variable>)`), so they were planned again at
-- every call: 0.02-0.15 ms each, about 0.47 ms of planning per claim and record of one
-- delivery, where executing them took 0.09 ms (pg_stat_statements, track_planning). The
-- generic plans are the same index scans. Measured with a client claiming and recording one
-- delivery at a time: a claim 1.07-1.12 -> 0.78-0.83 ms, a record 0.88-0.92 -> 0.82-0.85 ms;
-- a step of 50 about 5 % faster.
--
-- A later `create or replace` of either function must repeat this setting (it replaces the
-- function's settings); supabase/tests/dispatcher/claim-due-deliveries.test.sql checks it.

alter function private.claim_due_deliveries(text, integer, integer) set plan_cache_mode = force_generic_plan;
alter function private.record_delivery_results(text, jsonb, interval) set plan_cache_mode = force_generic_plan;

-- One business transaction: rename a process, which update_process_revision turns into a
-- new revision and the emit trigger into a PROCESS_REVISED event (fanned out to every
-- subscribed endpoint of the company). :set_no picks the company (0 or 5 endpoints).
\set n random(1, 100)
update public.processes
   set name = 'Final assembly station ' || :n || ' rev ' || random()
 where id = (select id from bench.process_ids where set_no = :set_no and n = :n);

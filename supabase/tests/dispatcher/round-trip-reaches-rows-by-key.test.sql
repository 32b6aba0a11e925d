-- The dispatcher's round trip reaches deliveries and events by their keys, whatever the
-- statistics when its statements were planned: the claim returns what it leases and finds
-- each event by its id (20261130170000); the record locks, logs and moves its deliveries
-- by id (20261130190000). Both keep their plans for the session and until the tables are
-- analyzed again, so a plan made on a small outbox must not scan a table that has grown.
--
-- The statistics are set in pg_class inside this transaction only (it rolls back), and
-- the sequential scans of the events and the deliveries are counted around each call
-- (pg_stat_xact_user_tables: this transaction's own).
begin;
select plan(11);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://one.example.com/hook') as hook_a \gset
select tests.create_company('Bolt') as company_b \gset
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://two.example.com/hook') as hook_b \gset

create function pg_temp.seq_scans() returns bigint language sql as $$
  select coalesce(sum(x.seq_scan), 0)::bigint
    from pg_catalog.pg_stat_xact_user_tables x
   where x.relid in ('public.webhook_events'::regclass, 'public.webhook_deliveries'::regclass)
$$;
-- Each call: its name, how many rows it claimed or recorded, and its sequential scans.
create temporary table calls (name text, n integer, seq_scans bigint);
create temporary table claimed (name text, delivery_id uuid, attempt_number integer);
create function pg_temp.claim(name text, batch integer) returns void language plpgsql as $$
declare
  before bigint := pg_temp.seq_scans();
begin
  insert into claimed select name, c.delivery_id, c.attempt_number from private.claim_due_deliveries('w', batch, 60) c;
  insert into calls select name, (select count(*) from claimed c where c.name = claim.name), pg_temp.seq_scans() - before;
end;
$$;
-- Records a success for every delivery the named claim returned.
create function pg_temp.record(claim_name text) returns void language plpgsql as $$
declare
  results jsonb := (select jsonb_agg(jsonb_build_object('delivery_id', c.delivery_id, 'attempt_number', c.attempt_number,
                                                        'outcome', 'succeeded', 'status', 200, 'duration_ms', 1))
                      from claimed c where c.name = claim_name);
  before bigint := pg_temp.seq_scans();
  n integer := private.record_delivery_results('w', results, interval '5 days');
begin
  insert into calls values ('record of ' || claim_name, n, pg_temp.seq_scans() - before);
end;
$$;

-- Never analyzed, as on a new project or after a TRUNCATE: the plan that joined the
-- claimed deliveries to their events scanned both tables, every claim; the record's lock
-- and attempt log scanned the deliveries, every record.
update pg_catalog.pg_class set reltuples = -1, relpages = 0, relallvisible = 0
 where oid in ('public.webhook_events'::regclass, 'public.webhook_deliveries'::regclass);

select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 1}');
select pg_temp.claim('new: one', 10);
select pg_temp.record('new: one');
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n))
  from generate_series(2, 10) n;
select pg_temp.claim('new: nine', 100);
select pg_temp.record('new: nine');

select is((select n from calls where name = 'new: one'), 1, 'a claim of one');
select is((select n from calls where name = 'new: nine'), 9, 'then a claim of nine');
select is((select sum(n)::integer from calls where name like 'record of new:%'), 10, 'all ten recorded');
select is((select sum(seq_scans)::integer from calls where name like 'new:%'), 0,
  'on never-analyzed tables the claims scanned neither the events nor the deliveries sequentially');
select is((select sum(seq_scans)::integer from calls where name like 'record of new:%'), 0,
  'nor did the records');

-- Analyzed while tiny (one row on one page), then grown: a plan made then may scan a
-- table once per call, but never once per delivery.
update pg_catalog.pg_class set reltuples = 1, relpages = 1
 where oid in ('public.webhook_events'::regclass, 'public.webhook_deliveries'::regclass);

select private.enqueue_webhook_event(:'company_b', 'PROCESS_REVISED', '{"n": 1}');
select pg_temp.claim('tiny: one', 10);
select pg_temp.record('tiny: one');
select private.enqueue_webhook_event(:'company_b', 'PROCESS_REVISED', jsonb_build_object('n', n))
  from generate_series(2, 10) n;
select pg_temp.claim('tiny: nine', 100);
select pg_temp.record('tiny: nine');

select is((select n from calls where name = 'tiny: nine'), 9, 'a claim of nine on the tiny statistics');
select cmp_ok((select seq_scans from calls where name = 'tiny: nine'), '<=',
              (select seq_scans from calls where name = 'tiny: one'),
  'it scanned no more often than a claim of one: the events and the leased rows are found by key');
select is((select n from calls where name = 'record of tiny: nine'), 9, 'and a record of nine');
select cmp_ok((select seq_scans from calls where name = 'record of tiny: nine'), '<=',
              (select seq_scans from calls where name = 'record of tiny: one'),
  'which scanned no more often than a record of one');

select is(current_setting('enable_seqscan'), 'on', 'the calls left sequential scans on, as they found them');
select is((select count(*)::integer from calls), 8, 'eight calls were counted');

select * from finish();
rollback;

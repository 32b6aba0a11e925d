-- A claim reads the deliveries it leases once, and each one's event by its id, whatever
-- the statistics when it was planned (20261130170000). The claim's plans are made once
-- per session and kept until the tables are analyzed again.
--
-- The statistics are set in pg_class inside this transaction only (it rolls back), and
-- the sequential scans the claims make are counted around each claim
-- (pg_stat_xact_user_tables: this transaction's own).
begin;
select plan(7);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://one.example.com/hook') as hook_a \gset
select tests.create_company('Bolt') as company_b \gset
select tests.create_webhook(:'company_b', 'PROCESS_REVISED', 'https://two.example.com/hook') as hook_b \gset

create function pg_temp.seq_scans() returns bigint language sql as $$
  select coalesce(sum(x.seq_scan), 0)::bigint
    from pg_catalog.pg_stat_xact_user_tables x
   where x.relid in ('public.webhook_events'::regclass, 'public.webhook_deliveries'::regclass)
$$;
-- Sequential scans of the events and the deliveries made by one claim, and its size.
create temporary table claims (name text, claimed integer, seq_scans bigint);
create function pg_temp.claim(name text, batch integer) returns void language plpgsql as $$
declare
  before bigint := pg_temp.seq_scans();
  n integer;
begin
  select count(*)::integer into n from private.claim_due_deliveries('w', batch, 60);
  insert into claims values (name, n, pg_temp.seq_scans() - before);
end;
$$;

-- Never analyzed, as on a new project or after a TRUNCATE: the plan that joined the
-- claimed deliveries to their events scanned both tables, every claim.
update pg_catalog.pg_class set reltuples = -1, relpages = 0, relallvisible = 0
 where oid in ('public.webhook_events'::regclass, 'public.webhook_deliveries'::regclass);

select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 1}');
select pg_temp.claim('new: one', 10);
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n))
  from generate_series(2, 40) n;
select pg_temp.claim('new: the rest of the cap', 100);

select is((select claimed from claims where name = 'new: one'), 1, 'a claim of one');
select is((select claimed from claims where name = 'new: the rest of the cap'), private.endpoint_concurrency(null) - 1,
  'then a claim of as many as the endpoint''s cap leaves');
select is((select sum(seq_scans)::integer from claims where name like 'new:%'), 0,
  'on never-analyzed tables the claims scanned neither the events nor the deliveries sequentially');

-- Analyzed while tiny (one row on one page), then grown: a plan made then may scan a
-- table for each claim, but never for each delivery it returns.
update pg_catalog.pg_class set reltuples = 1, relpages = 1
 where oid in ('public.webhook_events'::regclass, 'public.webhook_deliveries'::regclass);

select private.enqueue_webhook_event(:'company_b', 'PROCESS_REVISED', '{"n": 1}');
select pg_temp.claim('tiny: one', 10);
select private.enqueue_webhook_event(:'company_b', 'PROCESS_REVISED', jsonb_build_object('n', n))
  from generate_series(2, 40) n;
select pg_temp.claim('tiny: the rest of the cap', 100);

select is((select claimed from claims where name = 'tiny: the rest of the cap'), private.endpoint_concurrency(null) - 1,
  'a claim of several on the tiny statistics');
select cmp_ok((select seq_scans from claims where name = 'tiny: the rest of the cap'), '<=',
              (select seq_scans from claims where name = 'tiny: one'),
  'it scanned no more often than a claim of one: the events and the leased rows are found by key');

select is(current_setting('enable_seqscan'), 'on', 'the claims left sequential scans on, as they found them');
select is((select count(*)::integer from claims), 4, 'four claims were counted');

select * from finish();
rollback;

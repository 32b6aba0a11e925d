-- A claim reads the deliveries it leases once, and each one's event by its id
-- (20261130170000). The claim's plans are made once per session with the statistics of
-- that moment; a claim that joined its events by a hash join kept, in a session that
-- started on a small outbox, a sequential scan of every event and delivery in every claim
-- until the tables were analyzed again. This file's session plans the claim on a small,
-- never analyzed outbox, as a dispatcher starting on a new project does, and counts the
-- scans the claims make (pg_stat_xact_user_tables: this transaction's own).
begin;
select plan(3);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://one.example.com/hook') as hook_one \gset

create temporary table scans as
select relid::regclass::text as rel, seq_scan from pg_stat_xact_user_tables
 where relid in ('public.webhook_events'::regclass, 'public.webhook_deliveries'::regclass);

-- Claims of one, as at a low rate: each finds one new delivery.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{"n": 1}');
select is((select count(*)::integer from private.claim_due_deliveries('w', 10, 60)), 1, 'a claim of one');
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n))
  from generate_series(2, 40) n;
select is((select count(*)::integer from private.claim_due_deliveries('w', 100, 60)),
  private.endpoint_concurrency(null) - 1, 'then a claim of as many as the endpoint''s cap leaves');

select is(
  array(select s.rel || ': ' || (x.seq_scan - s.seq_scan)
          from scans s join pg_stat_xact_user_tables x on x.relid::regclass::text = s.rel
         where x.seq_scan > s.seq_scan
         order by 1),
  '{}'::text[],
  'the claims scanned neither the events nor the deliveries sequentially');

select * from finish();
rollback;

-- A claim visits only endpoints whose ready_at has come or that have new work (signals):
-- an endpoint waiting on a retry, one at its cap and one whose circuit waits for its next
-- probe are not touched at all, neither their endpoint row nor their deliveries (no row
-- version, no row lock), however many of them wait. That is what keeps a claim's cost
-- independent of the endpoints waiting on later work.
-- "Touched" is read from the rows themselves: an update makes a new row version (ctid), a
-- row lock (FOR UPDATE, SKIP LOCKED or not) writes the locker into xmax.
begin;
select plan(9);

select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://retrying.example.com/hook') as retrying \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://capped.example.com/hook') as capped \gset
select tests.create_webhook(:'company_a', 'PROCESS_DELETED', 'https://broken.example.com/hook') as broken \gset
update private.webhook_settings set endpoint_concurrency = 2, circuit_failure_threshold = 1;

-- retrying: its one delivery failed and is retried in an hour.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{}') \gset
select private.record_delivery_results('worker-0', jsonb_agg(jsonb_build_object(
         'delivery_id', c.delivery_id, 'attempt_number', 1, 'outcome', 'failed', 'status', 400, 'duration_ms', 1,
         'next_attempt_at', now() + interval '1 hour')), interval '5 days')
  from private.claim_due_deliveries('worker-0', 10, 60) c \gset
-- capped: 3 deliveries, 2 in flight (its cap), 1 due and waiting for a slot.
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', jsonb_build_object('n', n))) from generate_series(1, 3) n \gset
select count(*) from private.claim_due_deliveries('worker-0', 10, 60) \gset
-- broken: a 503 opened its circuit (threshold 1); its delivery is due now, its probe in 10 s.
select private.enqueue_webhook_event(:'company_a', 'PROCESS_DELETED', '{}') \gset
select private.record_delivery_results('worker-0', jsonb_agg(jsonb_build_object(
         'delivery_id', c.delivery_id, 'attempt_number', 1, 'outcome', 'failed', 'status', 503, 'duration_ms', 1,
         'next_attempt_at', now())), interval '5 days')
  from private.claim_due_deliveries('worker-0', 10, 60) c \gset

select results_eq(
  format($$select webhook_id, ready_at from private.webhook_endpoints where webhook_id in (%L, %L, %L) order by ready_at$$,
         :'retrying', :'capped', :'broken'),
  format($$values (%L::uuid, now() + interval '10 seconds'), (%L::uuid, now() + interval '60 seconds'), (%L::uuid, now() + interval '1 hour')$$,
         :'broken', :'capped', :'retrying'),
  'ready_at: the probe in 10 s, the first lease to run out in 60 s, the retry in an hour');

-- A newcomer with due work.
select tests.create_webhook(:'company_a', 'WEBHOOK_TEST', 'https://fresh.example.com/hook') as fresh \gset
select private.enqueue_webhook_event(:'company_a', 'WEBHOOK_TEST', '{}') as fresh_event \gset

-- Every row of the waiting endpoints, as it is now.
create temp table waiting_rows as
  select 'endpoint' as kind, e.webhook_id as id, e.ctid as version, e.xmax as locker
    from private.webhook_endpoints e where e.webhook_id in (:'retrying', :'capped', :'broken')
  union all
  select 'delivery', d.id, d.ctid, d.xmax
    from public.webhook_deliveries d where d.webhook_id in (:'retrying', :'capped', :'broken');
select is((select count(*)::integer from waiting_rows), 8, 'three waiting endpoints and their five deliveries');

create temp table claimed as select * from private.claim_due_deliveries('worker-1', 50, 60);
select results_eq($$select webhook_id, event_id from claimed$$,
  format($$values (%L::uuid, %L::uuid)$$, :'fresh', :'fresh_event'),
  'the claim returns the newcomer''s delivery only');
select is(
  (select count(*)::integer from waiting_rows w
     join private.webhook_endpoints e on e.webhook_id = w.id and w.kind = 'endpoint'
    where e.ctid = w.version and e.xmax = w.locker), 3,
  'the waiting endpoints'' rows are neither updated nor locked by the claim');
select is(
  (select count(*)::integer from waiting_rows w
     join public.webhook_deliveries d on d.id = w.id and w.kind = 'delivery'
    where d.ctid = w.version and d.xmax = w.locker), 5,
  'nor are their deliveries, the one due behind the cap and the one held by the circuit included');
select isnt((select xmax from private.webhook_endpoints where webhook_id = :'fresh'), '0'::xid,
  'the newcomer''s endpoint row was locked by the claim (the check above can see a lock)');

-- Once their times have come, the same claim visits them all.
select tests.time_passes('2 hours');
create temp table later as select * from private.claim_due_deliveries('worker-2', 50, 60);
select is(
  (select count(*)::integer from waiting_rows w
     join private.webhook_endpoints e on e.webhook_id = w.id and w.kind = 'endpoint'
    where e.ctid = w.version and e.xmax = w.locker), 0,
  'two hours later every one of the three endpoints is visited');
select results_eq(
  $$select webhook_id, count(*)::integer from later group by 1 order by 1$$,
  format($$select * from (values (%L::uuid, 1), (%L::uuid, 2), (%L::uuid, 1), (%L::uuid, 1)) v order by 1$$,
         :'retrying', :'capped', :'broken', :'fresh'),
  'and claims what is due: the retry, the capped endpoint''s 2 (its cap), one probe, the newcomer''s expired lease');
select is((select attempt_number from later where webhook_id = :'retrying'), 2, 'the retry is attempt 2');

update private.webhook_settings set endpoint_concurrency = 10, circuit_failure_threshold = 10;
select * from finish();
rollback;

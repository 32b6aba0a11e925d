-- The dispatcher heartbeat that decides whether the business path wakes anyone
-- (private.webhook_dispatcher_heartbeat, epoch milliseconds of the last claim by an awake
-- dispatcher, a sequence so that every session sees it at once and reading it locks
-- nothing): a claim that finds work marks the dispatchers awake (an empty one does not:
-- its dispatcher may be about to sleep); a heartbeat older than 2 s counts as
-- asleep; going idle clears it and hands back the transactions in progress, which the
-- dispatcher waits for (transactions_ended) before its last look. Only the service role
-- calls these. (The two-session half of the protocol: tests/outbox/wake-ups.test.ts.)
-- The heartbeat is not transactional: this file leaves it cleared.
begin;
select plan(13);

create function pg_temp.now_ms() returns bigint language sql as $$
  select (extract(epoch from clock_timestamp()) * 1000)::bigint
$$;

select setval('private.webhook_dispatcher_heartbeat', 0);
select ok(not private.dispatcher_is_awake(), 'a cleared heartbeat: no dispatcher is awake');
select count(*) from private.claim_due_deliveries('worker-1', 10, 60) \gset
select ok(not private.dispatcher_is_awake(), 'a claim that finds nothing does not mark anyone awake');
select tests.create_company('Heartbeat Inc') as company \gset
select tests.create_webhook(:'company', 'PROCESS_REVISED', 'https://heartbeat.example/hook');
select private.enqueue_webhook_event(:'company', 'PROCESS_REVISED', '{}');
select count(*) from private.claim_due_deliveries('worker-1', 10, 60) \gset
select ok(private.dispatcher_is_awake(), 'a claim that finds work marks the dispatchers awake');
select cmp_ok((select last_value from private.webhook_dispatcher_heartbeat), '>', pg_temp.now_ms() - 1000,
  'with the time of the claim in epoch milliseconds');
select setval('private.webhook_dispatcher_heartbeat', pg_temp.now_ms() - 100) as recent \gset
select private.note_dispatcher_awake();
select is((select last_value from private.webhook_dispatcher_heartbeat), :'recent'::bigint,
  'a heartbeat younger than 250 ms is not written again (at most four writes a second)');
select setval('private.webhook_dispatcher_heartbeat', pg_temp.now_ms() - 1500);
select ok(private.dispatcher_is_awake(), 'a heartbeat 1.5 s old: still awake');
select private.note_dispatcher_awake();
select cmp_ok((select last_value from private.webhook_dispatcher_heartbeat), '>', pg_temp.now_ms() - 1000,
  'an older one is refreshed');
select setval('private.webhook_dispatcher_heartbeat', pg_temp.now_ms() - 2100);
select ok(not private.dispatcher_is_awake(), 'a heartbeat older than 2 s counts as asleep');

select setval('private.webhook_dispatcher_heartbeat', pg_temp.now_ms());
create temp table idle as select private.dispatcher_going_idle() as xids;
select is((select last_value from private.webhook_dispatcher_heartbeat), 0::bigint, 'going idle clears the heartbeat');
select ok(not private.dispatcher_is_awake(), 'so the next business transaction wakes the dispatchers itself');
select ok(private.transactions_ended('{}'), 'no transactions to wait for: they have ended');
select ok(not private.transactions_ended(array[pg_current_xact_id()]), 'a transaction in progress has not ended');

select tests.authenticate_as(tests.create_user('admin@acme.test', :'company', 'ADMIN'));
select throws_ok($$select private.dispatcher_going_idle()$$,
  '42501', 'permission denied for function dispatcher_going_idle', 'users cannot touch the heartbeat');
select tests.clear_authentication();

select setval('private.webhook_dispatcher_heartbeat', 0);
select * from finish();
rollback;

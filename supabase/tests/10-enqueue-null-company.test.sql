-- enqueue_webhook_event(null, ...) silently returns null instead of the 22004 that
-- insert_webhook_event has for this case: the null check is never reached.
begin;
select plan(1);
select throws_ok($$select private.enqueue_webhook_event(null, 'PROCESS_REVISED', '{}')$$,
  '22004', 'company_id is required', 'enqueue refuses a null company');
select * from finish();
rollback;

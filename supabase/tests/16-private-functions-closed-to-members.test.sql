-- The machinery in `private` must not be callable by API users. It is: PUBLIC keeps
-- EXECUTE on every function, and authenticated has USAGE on schema private.
begin;
select plan(7);
select tests.create_company('Acme') as company_a \gset
select tests.create_company('Globex') as company_b \gset
select tests.create_user('member@globex.test', :'company_b', 'MEMBER') as member_b \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/hook') as hook_a \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{}') as event_a \gset

select tests.authenticate_as(:'member_b');
select throws_ok(format($$select private.enqueue_webhook_event(%L, 'PROCESS_REVISED', '{"forged": true}')$$, :'company_a'),
  '42501', 'permission denied for function enqueue_webhook_event', 'authenticated cannot enqueue');
select throws_ok($$select * from private.claim_due_deliveries('attacker', 50, 60)$$,
  '42501', 'permission denied for function claim_due_deliveries', 'authenticated cannot claim (it returns secrets)');
select throws_ok($$select private.record_delivery_results('attacker', '[]', interval '5 days')$$,
  '42501', 'permission denied for function record_delivery_results', 'authenticated cannot record results');
select throws_ok($$select private.release_deliveries('attacker', '{}')$$,
  '42501', 'permission denied for function release_deliveries', 'authenticated cannot release');
select throws_ok(format($$select private.cancel_pending_deliveries(%L, 'x')$$, :'hook_a'),
  '42501', 'permission denied for function cancel_pending_deliveries', 'authenticated cannot cancel');
select throws_ok($$select private.prune_webhook_history('1 hour')$$,
  '42501', 'permission denied for function prune_webhook_history', 'authenticated cannot prune');
select throws_ok(format($$select private.managed_webhook(%L)$$, :'hook_a'),
  '42501', 'permission denied for function managed_webhook', 'authenticated cannot call internal helpers');
select tests.clear_authentication();
select * from finish();
rollback;

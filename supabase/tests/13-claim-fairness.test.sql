-- per_webhook_limit is applied after LIMIT batch_size, so a backlog on one endpoint still
-- starves the others: the batch shrinks instead of being filled by other endpoints.
begin;
select plan(1);
select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://busy.example.com/hook') as busy \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://quiet.example.com/hook') as quiet \gset
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{}')) from generate_series(1, 10) \gset
update public.webhook_deliveries set next_attempt_at = now() - interval '1 hour';  -- the busy backlog is older
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{}') as quiet_event \gset
select set_eq(
  $$select webhook_id from private.claim_due_deliveries('worker-1', 5, 60, 2)$$,
  format('values (%L::uuid), (%L::uuid)', :'busy', :'quiet'),
  'with per_webhook_limit, a due delivery of another endpoint is claimed alongside a backlog');
select * from finish();
rollback;

-- Claims are fair across endpoints: each endpoint's oldest due deliveries are taken in
-- turn, so a backlog on one endpoint, however old and however large, never hides
-- another endpoint's due work; per_webhook_limit caps how many one endpoint gets.
begin;
select plan(4);
select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://busy.example.com/hook') as busy \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://quiet.example.com/hook') as quiet \gset

-- A backlog of 600 for the busy endpoint, older than anything else (more than 10 batches).
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{}')) from generate_series(1, 600) \gset
update public.webhook_deliveries set next_attempt_at = now() - interval '1 hour';
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{}') as quiet_event \gset

create temp table first_claim as select webhook_id from private.claim_due_deliveries('worker-1', 50, 60);
select is((select count(*) from first_claim), 50::bigint, 'a claim of 50 is filled');
select is((select count(*) from first_claim where webhook_id = :'quiet'), 1::bigint,
  'the quiet endpoint''s one due delivery is in the first claim despite 600 older ones for another endpoint');

create temp table capped_claim as select webhook_id from private.claim_due_deliveries('worker-2', 50, 60, 10);
select is((select count(*) from capped_claim where webhook_id = :'busy'), 10::bigint,
  'per_webhook_limit caps one endpoint''s share of a claim');
select is((select count(*) from capped_claim), 10::bigint,
  'and the claim comes back short rather than exceeding the cap (the quiet endpoint has nothing left)');

select * from finish();
rollback;

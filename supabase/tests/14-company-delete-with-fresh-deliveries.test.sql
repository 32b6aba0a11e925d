-- Deleting a company fails when its webhooks have pending deliveries created in the same
-- transaction (e.g. "delete the processes, then the company"): the BEFORE DELETE trigger
-- on webhooks updates those deliveries after the company row is gone, and the FK check
-- on webhook_deliveries.company_id fires because the rows are our own transaction's.
begin;
select plan(2);
select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_DELETED', 'https://a.example.com/hook') as hook_a \gset
insert into public.processes (company_id, name) values (:'company_a', 'P') returning id as p \gset
select lives_ok(
  format($$delete from public.processes where company_id = %L$$, :'company_a'),
  'delete the company''s processes (PROCESS_DELETED deliveries are created)');
select lives_ok(
  format($$delete from public.companies where id = %L$$, :'company_a'),
  'then delete the company in the same transaction');
select * from finish();
rollback;

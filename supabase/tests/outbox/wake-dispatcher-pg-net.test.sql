-- The pg_net wake-up of the edge function: one call per transaction that creates
-- deliveries, to the configured URL with the service key, and none without a URL.
-- pg_net does not exist on plain Postgres, so this test stands in a `net.http_post` with
-- pg_net's signature that records its calls (inside the test transaction only).
begin;
select plan(6);

create schema net;
create table net.calls (url text, headers jsonb, body jsonb, timeout_milliseconds integer);
create function net.http_post(url text, headers jsonb, body jsonb, timeout_milliseconds integer)
returns bigint language sql as $$
  insert into net.calls values (url, headers, body, timeout_milliseconds);
  select 1::bigint
$$;

select tests.create_company('Company A') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a.example/one');
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a.example/two');

insert into public.processes (company_id, name) values (:'company_a', 'No URL yet');
select is((select count(*) from net.calls), 0::bigint, 'no dispatcher URL configured: no call');

update private.webhook_settings
   set dispatcher_url = 'https://project.supabase.co/functions/v1/webhook-dispatcher',
       dispatcher_key = 'service-key';
-- A new transaction id for the once-per-transaction guard: a savepoint keeps this file one transaction,
-- so reset the guard the way a new transaction would.
select set_config('webhooks.woken_in_xact', '', true);

insert into public.processes (company_id, name) values (:'company_a', 'First'), (:'company_a', 'Second');
select is((select count(*) from public.webhook_deliveries where company_id = :'company_a'), 6::bigint,
  'three processes, two endpoints each: six deliveries');
select is((select count(*) from net.calls), 1::bigint, 'one wake-up for the whole transaction, however many deliveries');
select is((select url from net.calls), 'https://project.supabase.co/functions/v1/webhook-dispatcher',
  'the wake-up goes to the configured function URL');
select is((select headers ->> 'Authorization' from net.calls), 'Bearer service-key',
  'with the service key as bearer');

insert into public.processes (company_id, name) values (:'company_a', 'Third');
select is((select count(*) from net.calls), 1::bigint, 'still one call: the guard holds for the transaction');

select * from finish();
rollback;

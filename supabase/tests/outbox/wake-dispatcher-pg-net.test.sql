-- The pg_net wake-up of the edge function: one call per transaction that creates
-- deliveries while no dispatcher is awake, to the configured URL with the service key, and
-- none without a URL. A dispatcher is awake while its heartbeat
-- (private.webhook_dispatcher_heartbeat, epoch milliseconds of its last claim) is younger
-- than 2 s; a dispatcher going idle clears it.
-- pg_net does not exist on plain Postgres, so this test stands in a `net.http_post` with
-- pg_net's signature that records its calls (inside the test transaction only).
-- The heartbeat is a sequence (not transactional): this file sets it as each case needs
-- and leaves it cleared.
begin;
select plan(10);

-- No dispatcher is awake.
select setval('private.webhook_dispatcher_heartbeat', 0);

create schema net;
create table net.calls (url text, headers jsonb, body jsonb, timeout_milliseconds integer);
create function net.http_post(url text, headers jsonb, body jsonb, timeout_milliseconds integer)
returns bigint language sql as $$
  insert into net.calls values (url, headers, body, timeout_milliseconds);
  select 1::bigint
$$;

-- One call per transaction here: the coalescing across transactions (at most one call per
-- wakeup_interval_ms) is tests/outbox/wake-up-coalescing.test.ts's.
update private.webhook_settings set wakeup_interval_ms = 0;

select tests.create_company('Company A') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a.example/one');
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a.example/two');

insert into public.processes (company_id, name) values (:'company_a', 'No URL yet');
select is((select count(*) from net.calls), 0::bigint, 'no dispatcher URL configured: no call');

update private.webhook_settings
   set dispatcher_url = 'https://project.supabase.co/functions/v1/webhook-dispatcher',
       dispatcher_key = 'service-key';
-- This file is one transaction: reset the once-per-transaction guard the way a new
-- transaction would.
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

-- A dispatcher is awake (it just claimed): it will see the new deliveries itself.
select set_config('webhooks.woken_in_xact', '', true);
select count(*) from private.claim_due_deliveries('awake-worker', 1, 60) \gset
select ok(private.dispatcher_is_awake(), 'a claim marks the dispatchers awake');
insert into public.processes (company_id, name) values (:'company_a', 'While awake');
select is((select count(*) from net.calls), 1::bigint, 'no wake-up while a dispatcher is awake');

-- Its heartbeat is 2.5 s old: it died awake, or stopped claiming. Asleep.
select setval('private.webhook_dispatcher_heartbeat', (extract(epoch from clock_timestamp()) * 1000)::bigint - 2500);
insert into public.processes (company_id, name) values (:'company_a', 'After a stale heartbeat');
select is((select count(*) from net.calls), 2::bigint, 'a heartbeat older than 2 s counts as asleep: a wake-up');

-- A dispatcher awake again, then going idle: wake-ups resume at once.
select set_config('webhooks.woken_in_xact', '', true);
select setval('private.webhook_dispatcher_heartbeat', (extract(epoch from clock_timestamp()) * 1000)::bigint);
select count(*) from private.dispatcher_going_idle() \gset
insert into public.processes (company_id, name) values (:'company_a', 'After going idle');
select is((select count(*) from net.calls), 3::bigint, 'a dispatcher that went idle no longer suppresses wake-ups');
select setval('private.webhook_dispatcher_heartbeat', 0);

select * from finish();
rollback;

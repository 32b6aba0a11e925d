-- Process events: what PROCESS_CREATED, PROCESS_REVISED and PROCESS_DELETED carry, when
-- they are (not) emitted, that an oversized snapshot never breaks the process change, that
-- a write looks its subscribers up once, and that a process change and its event commit
-- together or not at all: a database error while recording the event fails the change (so
-- the client retries both), it is never downgraded to a warning.
-- The changes are made by an ADMIN through the API path (RLS, column grants), as in the app.
begin;
select plan(39);

select tests.create_company('Acme') as company_a \gset
select tests.create_user('admin@acme.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://created.example.com/hook') as hook_created \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://revised.example.com/hook') as hook_revised \gset
select tests.create_webhook(:'company_a', 'PROCESS_DELETED', 'https://deleted.example.com/hook') as hook_deleted \gset

-- PROCESS_CREATED -------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
insert into public.processes (company_id, name, type)
values (:'company_a', 'Anodize housing', 'PRODUCTION')
returning id as process_id \gset
select tests.clear_authentication();

select id as created_event, payload as created_payload
  from public.webhook_events where trigger_type = 'PROCESS_CREATED' \gset

select is((select count(*)::integer from public.webhook_events where trigger_type = 'PROCESS_CREATED'), 1,
  'creating a process records one PROCESS_CREATED event');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(:'created_payload'::jsonb) k),
  array['company_id', 'data', 'timestamp', 'type'],
  'the body envelope is {type, timestamp, company_id, data}');
select is(:'created_payload'::jsonb ->> 'type', 'PROCESS_CREATED', 'type is the trigger type');
select is(:'created_payload'::jsonb ->> 'company_id', :'company_a', 'company_id is the process''s company');
select matches(:'created_payload'::jsonb ->> 'timestamp', '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$',
  'timestamp is ISO 8601 UTC with microseconds');
select is((:'created_payload'::jsonb ->> 'timestamp')::timestamptz, now(),
  'timestamp is when the event was recorded');
select is(:'created_payload'::jsonb -> 'data' ->> 'process_id', :'process_id', 'data.process_id');
select is(:'created_payload'::jsonb -> 'data' -> 'revision', '1'::jsonb, 'data.revision is 1');
select is(:'created_payload'::jsonb -> 'data' -> 'process',
  (select to_jsonb(p) - 'carbon_copy' from public.processes p where p.id = :'process_id'),
  'data.process is the new row (without carbon_copy)');
select is(
  (select array_agg(webhook_id) from public.webhook_deliveries where event_id = :'created_event'),
  array[:'hook_created'::uuid],
  'it is delivered to the PROCESS_CREATED endpoint only');

-- PROCESS_REVISED -------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
update public.processes
   set type = 'INSTANTIATION', use_api = true, name = 'Anodize housing (type II)'
 where id = :'process_id';
select tests.clear_authentication();

select id as revised_event, payload as revised_payload
  from public.webhook_events where trigger_type = 'PROCESS_REVISED' \gset

select is((select count(*)::integer from public.webhook_events where trigger_type = 'PROCESS_REVISED'), 1,
  'a definition change records one PROCESS_REVISED event');
select is(:'revised_payload'::jsonb ->> 'type', 'PROCESS_REVISED', 'type is PROCESS_REVISED');
select is(:'revised_payload'::jsonb ->> 'company_id', :'company_a', 'company_id is the process''s company');
select is(:'revised_payload'::jsonb -> 'data' ->> 'process_id', :'process_id', 'data.process_id');
select is(:'revised_payload'::jsonb -> 'data' -> 'revision', '2'::jsonb, 'data.revision is the new revision');
select is(:'revised_payload'::jsonb -> 'data' -> 'previous_revision', '1'::jsonb, 'data.previous_revision');
select is(:'revised_payload'::jsonb -> 'data' -> 'changed_fields', '["name", "type", "use_api"]'::jsonb,
  'data.changed_fields lists the changed definition columns, sorted');
select is(:'revised_payload'::jsonb -> 'data' -> 'previous',
  (select carbon_copy from public.processes where id = :'process_id'),
  'data.previous is the carbon_copy snapshot');
select is(:'revised_payload'::jsonb -> 'data' -> 'previous' ->> 'name', 'Anodize housing',
  'which holds the previous version');
select is(:'revised_payload'::jsonb -> 'data' -> 'process',
  (select to_jsonb(p) - 'carbon_copy' from public.processes p where p.id = :'process_id'),
  'data.process is the new row (without carbon_copy)');
select is(
  (select array_agg(webhook_id) from public.webhook_deliveries where event_id = :'revised_event'),
  array[:'hook_revised'::uuid],
  'it is delivered to the PROCESS_REVISED endpoint only');

-- Changes that are not revisions emit nothing.
select tests.authenticate_as(:'admin_a');
update public.processes
   set approved = true, approved_by_user_id = :'admin_a', approved_at = now()
 where id = :'process_id';
update public.processes set name = name where id = :'process_id';
select tests.clear_authentication();

select is((select revision from public.processes where id = :'process_id'), 2::bigint,
  'approval and no-op updates keep the revision');
select is((select approved from public.processes where id = :'process_id'), true,
  'the approval itself was saved');
select is((select count(*)::integer from public.webhook_events where trigger_type = 'PROCESS_REVISED'), 1,
  'approval-only and no-op updates emit no PROCESS_REVISED event');

-- An oversized snapshot: the process change succeeds, the event is truncated.
select tests.authenticate_as(:'admin_a');
update public.processes set name = repeat('a', 150000) where id = :'process_id';  -- ~150 KB body: fits
update public.processes set name = repeat('b', 150000) where id = :'process_id';  -- ~300 KB body: too big
select tests.clear_authentication();

select is((select revision from public.processes where id = :'process_id'), 4::bigint,
  'the update with an oversized snapshot still succeeds and bumps the revision');
select is((select left(name, 3) from public.processes where id = :'process_id'), 'bbb',
  'and its change is saved');

select id as truncated_event, payload as truncated_payload
  from public.webhook_events
 where trigger_type = 'PROCESS_REVISED' and payload -> 'data' -> 'revision' = '4' \gset

select is(:'truncated_payload'::jsonb -> 'data',
  jsonb_build_object('process_id', :'process_id', 'revision', 4, 'previous_revision', 3,
                     'changed_fields', jsonb_build_array('name'), 'truncated', true),
  'the event keeps the identifying fields, drops the snapshots and says truncated');
select is(
  (select payload -> 'data' -> 'truncated' from public.webhook_events
    where trigger_type = 'PROCESS_REVISED' and payload -> 'data' -> 'revision' = '3'),
  null,
  'the revision that fitted was sent whole');
select ok(octet_length(:'truncated_payload'::text) < 1024, 'the truncated body is small');
select is((select count(*)::integer from public.webhook_deliveries where event_id = :'truncated_event'), 1,
  'the truncated event is still delivered');

-- PROCESS_DELETED -------------------------------------------------------------------
select to_jsonb(p) - 'carbon_copy' as last_version from public.processes p where p.id = :'process_id' \gset
select tests.authenticate_as(:'admin_a');
delete from public.processes where id = :'process_id';
select tests.clear_authentication();

select id as deleted_event, payload as deleted_payload
  from public.webhook_events where trigger_type = 'PROCESS_DELETED' \gset

select is(:'deleted_payload'::jsonb ->> 'type', 'PROCESS_DELETED', 'deleting a process records PROCESS_DELETED');
select is(:'deleted_payload'::jsonb ->> 'company_id', :'company_a', 'company_id is the process''s company');
select is(:'deleted_payload'::jsonb -> 'data',
  jsonb_build_object('process_id', :'process_id', 'revision', 4, 'process', :'last_version'::jsonb),
  'data has the process id, its last revision and its last version');
select is(
  (select array_agg(webhook_id) from public.webhook_deliveries where event_id = :'deleted_event'),
  array[:'hook_deleted'::uuid],
  'it is delivered to the PROCESS_DELETED endpoint only');

-- A company without subscribers: process changes record nothing.
select tests.create_company('Quiet') as company_q \gset
insert into public.processes (company_id, name) values (:'company_q', 'Quiet process') returning id as quiet_process \gset
update public.processes set name = 'Quieter process' where id = :'quiet_process';
delete from public.processes where id = :'quiet_process';
select is((select count(*)::integer from public.webhook_events where company_id = :'company_q'), 0,
  'no events for a company with no endpoints');

-- One subscriber lookup per process write: the trigger asks subscribed_webhooks once
-- and hands what it found to the insert, whether anyone subscribes or not.
set local track_functions = 'all';
create function pg_temp.subscriber_lookups() returns bigint language sql as $$
  select coalesce(pg_stat_get_xact_function_calls('private.subscribed_webhooks(uuid, text)'::regprocedure), 0)
$$;
select pg_temp.subscriber_lookups() as lookups_before \gset
insert into public.processes (company_id, name) values (:'company_a', 'Counted process');
select is(pg_temp.subscriber_lookups() - :lookups_before, 1::bigint,
  'a subscribed process write looks up its subscribers once');
select pg_temp.subscriber_lookups() as lookups_before \gset
insert into public.processes (company_id, name) values (:'company_q', 'Counted quiet process');
select is(pg_temp.subscriber_lookups() - :lookups_before, 1::bigint,
  'so does a process write nobody subscribes to');

-- A process change and its event are one: an error recording the event (here an injected
-- serialization failure) fails the change.
create function pg_temp.fail_like_a_serialization_conflict() returns trigger language plpgsql as $$
begin
  raise exception 'could not serialize access due to concurrent update' using errcode = '40001';
end $$;
create trigger inject_failure before insert on public.webhook_events
  for each row execute function pg_temp.fail_like_a_serialization_conflict();
select throws_ok(
  format($$insert into public.processes (company_id, name) values (%L, 'P')$$, :'company_a'),
  '40001', 'could not serialize access due to concurrent update',
  'a transient failure to record the event fails the process change (so the client retries it)');
select is((select count(*)::integer from public.processes p
            where p.company_id = :'company_a'
              and not exists (select 1 from public.webhook_events e where e.payload -> 'data' ->> 'process_id' = p.id::text)),
  0, 'no process change exists without its event');

select * from finish();
rollback;

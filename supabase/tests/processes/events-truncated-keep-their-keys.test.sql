-- A process event too large to send whole keeps exactly the keys of its type except the
-- snapshots (process, previous), plus truncated: true. No key of another type appears.
begin;
select plan(4);

select tests.create_company('Acme') as company_a \gset
select tests.create_user('admin@acme.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://created.example.com/hook');
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://revised.example.com/hook');
select tests.create_webhook(:'company_a', 'PROCESS_DELETED', 'https://deleted.example.com/hook');

-- ~300 KB of name: over the 256 KB limit in every type's payload.
select tests.authenticate_as(:'admin_a');
insert into public.processes (company_id, name) values (:'company_a', repeat('a', 300000)) returning id as process_id \gset
update public.processes set name = repeat('b', 300000) where id = :'process_id';
delete from public.processes where id = :'process_id';
select tests.clear_authentication();

create function pg_temp.data_of(trigger_type text) returns jsonb language sql as $$
  select payload -> 'data' from public.webhook_events e where e.trigger_type = data_of.trigger_type
$$;

select is(pg_temp.data_of('PROCESS_CREATED'),
  jsonb_build_object('process_id', :'process_id', 'revision', 1, 'truncated', true),
  'a truncated PROCESS_CREATED carries process_id, revision and truncated: no process, no keys of other types');
select is(pg_temp.data_of('PROCESS_REVISED'),
  jsonb_build_object('process_id', :'process_id', 'revision', 2, 'previous_revision', 1,
                     'changed_fields', jsonb_build_array('name'), 'truncated', true),
  'a truncated PROCESS_REVISED keeps previous_revision and changed_fields, drops process and previous');
select is(pg_temp.data_of('PROCESS_DELETED'),
  jsonb_build_object('process_id', :'process_id', 'revision', 2, 'truncated', true),
  'a truncated PROCESS_DELETED carries process_id, revision and truncated');
select is((select count(*)::integer from public.webhook_deliveries), 3, 'each truncated event is still delivered');

select * from finish();
rollback;

-- The example payload of each trigger type (the portal's event catalogue) has the shape of
-- what the emitting code really sends: same keys at the top, in data, and in the process
-- snapshots. A new process column or a changed payload fails here until the example follows.
begin;
select plan(10);

create function pg_temp.keys(j jsonb) returns text[] language sql immutable as $$
  select coalesce(array(select k from jsonb_object_keys(j) k order by k), '{}')
$$;
create function pg_temp.shape(j jsonb) returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'top', to_jsonb(pg_temp.keys(j)),
    'data', to_jsonb(pg_temp.keys(j -> 'data')),
    'process', to_jsonb(pg_temp.keys(j -> 'data' -> 'process')),
    'previous', to_jsonb(pg_temp.keys(j -> 'data' -> 'previous')))
$$;

select is(
  (select array_agg(name order by name) from public.webhook_trigger_types where example_payload is null),
  null, 'every trigger type has an example payload'
);
select is(
  (select array_agg(name order by name) from public.webhook_trigger_types where example_payload ->> 'type' is distinct from name),
  null, 'each example says its own type'
);

-- Real events of every type, from the code that emits them.
select tests.create_company('Company A') as company_a \gset
select tests.create_webhook(:'company_a', t, 'https://a.example/' || lower(t)) from unnest(array['PROCESS_CREATED', 'PROCESS_REVISED', 'PROCESS_DELETED']) t;
select tests.create_webhook(:'company_a', 'WEBHOOK_TEST', 'https://a.example/test') as test_hook \gset
insert into public.processes (company_id, name) values (:'company_a', 'Final assembly') returning id as process_id \gset
update public.processes set name = 'Final assembly and test' where id = :'process_id';
delete from public.processes where id = :'process_id';
select tests.authenticate_as_service_role();
select public.send_test_webhook(:'test_hook');
select tests.clear_authentication();

select is(pg_temp.shape(e.payload), pg_temp.shape(t.example_payload), format('%s: the example has the real payload''s keys', t.name))
  from public.webhook_trigger_types t
  join public.webhook_events e on e.trigger_type = t.name
 order by t.name;

select is(
  (select count(distinct trigger_type)::int from public.webhook_events where company_id = :'company_a'),
  (select count(*)::int from public.webhook_trigger_types),
  'every trigger type was really emitted and compared above'
);

-- Readable by any signed-in user, like the rest of the catalogue; not by anon.
select * from tests.create_cast() \gset
select tests.authenticate_as(:'member_a');
select is((select count(*)::int from public.webhook_trigger_types where example_payload is not null), 4,
  'a signed-in user reads the examples with the catalogue');
select tests.authenticate_as_anon();
select throws_ok('select example_payload from public.webhook_trigger_types',
  '42501', 'permission denied for table webhook_trigger_types', 'anon does not');
select tests.clear_authentication();

select is(
  (select jsonb_typeof(example_payload -> 'data' -> 'changed_fields') from public.webhook_trigger_types where name = 'PROCESS_REVISED'),
  'array', 'PROCESS_REVISED lists its changed fields as an array'
);

select * from finish();
rollback;

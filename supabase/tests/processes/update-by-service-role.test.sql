-- The service role can update processes: update_process_revision (invoker rights) can
-- call what it needs. The service role's update comes first in its transaction, so no
-- earlier caller's checked, cached plan can stand in for its own privileges.
begin;
select plan(3);

select tests.create_company('Company A') as company_a \gset
insert into public.processes (company_id, name) values (:'company_a', 'Assembly') returning id as process \gset

select tests.authenticate_as_service_role();
select lives_ok(
  format($$update public.processes set name = 'Final assembly' where id = %L$$, :'process'),
  'the service role renames a process'
);
select tests.clear_authentication();
select results_eq(
  format($$select name, revision, carbon_copy ->> 'name' from public.processes where id = %L$$, :'process'),
  $$values ('Final assembly', 2::bigint, 'Assembly')$$,
  'its change is a new revision like any other'
);
select is(
  array(select p.oid::regprocedure::text from pg_proc p
         where p.pronamespace = 'private'::regnamespace
           and p.proname in ('process_changed_fields', 'process_non_definition_columns', 'user_exists')
           and not has_function_privilege('service_role', p.oid, 'EXECUTE')),
  '{}'::text[],
  'service_role can execute what update_process_revision calls'
);

select * from finish();
rollback;

-- update_process_revision (and start_at_revision_one): the revision rules of the
-- migration header, exercised the way clients do it, as an ADMIN of the company, and
-- through service_role where a client could not even try (column grants).
--
-- now() is constant inside the test transaction, so the fixture process is created by
-- the superuser with timestamps in the past: "updated_at = now()" then means "touched".
begin;
select plan(30);

select tests.create_company('Company A') as company_a \gset
select tests.create_company('Company B') as company_b \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_user('admin@b.test', :'company_b', 'ADMIN') as admin_b \gset

insert into public.processes (company_id, name, type, created_at, updated_at, created_by_user_id,
                              approved, approved_by_user_id, approved_at)
values (:'company_a', 'Assembly', 'PRODUCTION', '2000-01-01', '2000-01-01', :'admin_a',
        true, :'admin_a', '2000-01-02')
returning id as process \gset

-- Insert: always revision 1 with no carbon copy ---------------------------------------------
select tests.authenticate_as_service_role();
insert into public.processes (company_id, name, revision, carbon_copy)
values (:'company_a', 'Imported', 42, '{"name": "forged"}');
select results_eq(
  $$select revision, carbon_copy from public.processes where name = 'Imported'$$,
  $$values (1::bigint, null::jsonb)$$,
  'an insert starts at revision 1 with no carbon copy, whatever service_role sends'
);

select tests.authenticate_as(:'admin_a');
insert into public.processes (company_id, name) values (:'company_a', 'Painting');
select results_eq(
  $$select revision, carbon_copy, approved from public.processes where name = 'Painting'$$,
  $$values (1::bigint, null::jsonb, false)$$,
  'a process created by an ADMIN starts at revision 1, no carbon copy, unapproved'
);
select throws_ok(
  format($$insert into public.processes (company_id, name, revision) values (%L, 'Forged', 7)$$, :'company_a'),
  '42501', 'permission denied for table processes',
  'an ADMIN cannot send a revision on insert (no column privilege)'
);

-- No-op update: nothing moves, not even updated_at ----------------------------------------------
update public.processes set name = name, type = type where id = :'process';
select results_eq(
  format($$select revision, carbon_copy, updated_at, approved from public.processes where id = %L$$, :'process'),
  $$values (1::bigint, null::jsonb, '2000-01-01'::timestamptz, false)$$,
  'an update that changes nothing keeps the revision, the (insert-reset) approval and updated_at'
);

-- Definition change: +1, snapshot of the previous row, approval reset ----------------------------
select tests.clear_authentication();
select to_jsonb(p) - 'carbon_copy' as snapshot_v1 from public.processes p where p.id = :'process' \gset
select tests.authenticate_as(:'admin_a');

update public.processes set name = 'Assembly v2' where id = :'process';
select is(
  (select revision from public.processes where id = :'process'), 2::bigint,
  'changing a definition column bumps the revision from 1 to 2'
);
select is(
  (select carbon_copy from public.processes where id = :'process'), :'snapshot_v1'::jsonb,
  'carbon_copy is the previous row as jsonb, without its own carbon_copy'
);
select is(
  (select carbon_copy ->> 'name' from public.processes where id = :'process'), 'Assembly',
  'carbon_copy holds the previous name'
);
select results_eq(
  format($$select approved, approved_by_user_id, approved_at from public.processes where id = %L$$, :'process'),
  $$values (false, null::uuid, null::timestamptz)$$,
  'a new revision resets the approval'
);
select is(
  (select updated_at from public.processes where id = :'process'), now(),
  'a new revision sets updated_at'
);
select results_eq(
  format($$select created_at, created_by_user_id from public.processes where id = %L$$, :'process'),
  format($$values ('2000-01-01'::timestamptz, %L::uuid)$$, :'admin_a'),
  'a new revision keeps created_at and created_by_user_id'
);

-- Approval only: no new revision -------------------------------------------------------------
update public.processes
   set approved = true, approved_by_user_id = :'admin_a', approved_at = '2000-02-01'
 where id = :'process';
select results_eq(
  format($$select revision, carbon_copy, approved, approved_by_user_id, approved_at
             from public.processes where id = %L$$, :'process'),
  format($$values (2::bigint, %L::jsonb, true, %L::uuid, now())$$, :'snapshot_v1', :'admin_a'),
  'approving changes only the approval fields (approver and time recorded by the trigger): same revision, same carbon copy'
);
update public.processes set approved = false, approved_by_user_id = null, approved_at = null where id = :'process';
select is(
  (select revision from public.processes where id = :'process'), 2::bigint,
  'withdrawing the approval is not a revision either'
);

-- A definition change sent together with an approval still resets the approval.
update public.processes set approved = true where id = :'process';
select tests.clear_authentication();
select to_jsonb(p) - 'carbon_copy' as snapshot_v2 from public.processes p where p.id = :'process' \gset
select tests.authenticate_as(:'admin_a');
update public.processes
   set is_mandatory = true, approved = true, approved_by_user_id = :'admin_a', approved_at = now()
 where id = :'process';
select results_eq(
  format($$select revision, approved, approved_by_user_id from public.processes where id = %L$$, :'process'),
  $$values (3::bigint, false, null::uuid)$$,
  'a definition change sent with an approval is a new revision and ends unapproved'
);

-- Successive revisions: each carbon copy is the one previous version, never nested ----------------
select is(
  (select carbon_copy from public.processes where id = :'process'), :'snapshot_v2'::jsonb,
  'revision 3 carries the snapshot of revision 2'
);
select results_eq(
  format($$select carbon_copy ->> 'revision', carbon_copy ->> 'name', carbon_copy ? 'carbon_copy'
             from public.processes where id = %L$$, :'process'),
  $$values ('2', 'Assembly v2', false)$$,
  'the snapshot of revision 2 has no carbon_copy key: snapshots never nest'
);
update public.processes set revision_description = 'tighter torque' where id = :'process';
select results_eq(
  format($$select revision, (carbon_copy ->> 'revision')::bigint, carbon_copy ? 'carbon_copy'
             from public.processes where id = %L$$, :'process'),
  $$values (4::bigint, 3::bigint, false)$$,
  'revision 4 carries revision 3, again without nesting'
);
select is(
  (select octet_length(carbon_copy::text) < 2 * octet_length((to_jsonb(p) - 'carbon_copy')::text)
     from public.processes p where id = :'process'),
  true,
  'the carbon copy stays the size of one row after several revisions'
);

-- Every definition column bumps the revision by exactly one ------------------------------------
select is(
  array(select a.attname::text
          from pg_attribute a
         where a.attrelid = 'public.processes'::regclass and a.attnum > 0 and not a.attisdropped
           and a.attname <> all (private.process_non_definition_columns())
         order by 1),
  array['allow_batch', 'break_prior_links', 'dependent_process_ids', 'is_mandatory', 'name',
        'record_operator', 'revision_description', 'show_media_numbering', 'type', 'use_api'],
  'the definition columns are exactly the documented ones'
);

create function pg_temp.columns_not_bumping_by_one(process_id uuid)
returns text[]
language plpgsql
as $$
declare
  col record;
  revision_before bigint;
  revision_after bigint;
  missed text[] := '{}';
begin
  for col in
    select a.attname, format_type(a.atttypid, a.atttypmod) as type
      from pg_attribute a
     where a.attrelid = 'public.processes'::regclass and a.attnum > 0 and not a.attisdropped
       and a.attname <> all (private.process_non_definition_columns())
     order by a.attnum
  loop
    select p.revision into revision_before from public.processes p where p.id = process_id;
    execute format('update public.processes set %I = %s where id = $1', col.attname,
      case col.type
        when 'boolean' then format('not %I', col.attname)
        when 'text' then format('coalesce(%I, %L) || %L', col.attname, 'X', 'X')
        when 'uuid[]' then format('array_append(%I, gen_random_uuid())', col.attname)
        else format('raise: no test value for type %s', col.type)  -- fails loudly on a new type
      end)
      using process_id;
    select p.revision into revision_after from public.processes p where p.id = process_id;
    if revision_after is distinct from revision_before + 1 then
      missed := missed || col.attname::text;
    end if;
  end loop;
  return missed;
end;
$$;
select is(
  pg_temp.columns_not_bumping_by_one(:'process'),
  '{}'::text[],
  'changing any one definition column, as the ADMIN, bumps the revision by exactly one'
);
select is(
  (select revision from public.processes where id = :'process'), 14::bigint,
  'ten single-column changes made ten revisions (4 -> 14)'
);

-- revision and carbon_copy belong to the trigger -----------------------------------------------
select throws_ok(
  format($$update public.processes set revision = 99 where id = %L$$, :'process'),
  '42501', 'permission denied for table processes',
  'an ADMIN cannot set revision by hand (no column privilege)'
);
select throws_ok(
  format($$update public.processes set carbon_copy = '{}' where id = %L$$, :'process'),
  '42501', 'permission denied for table processes',
  'an ADMIN cannot set carbon_copy by hand (no column privilege)'
);
select throws_ok(
  format($$update public.processes set updated_at = '1999-01-01' where id = %L$$, :'process'),
  '42501', 'permission denied for table processes',
  'an ADMIN cannot set updated_at by hand (no column privilege)'
);

select tests.clear_authentication();
select carbon_copy::text as carbon_copy_v14 from public.processes where id = :'process' \gset
select tests.authenticate_as_service_role();
update public.processes
   set revision = 99, carbon_copy = '{"forged": true}', created_at = '1999-01-01', created_by_user_id = :'admin_b'
 where id = :'process';
select results_eq(
  format($$select revision, carbon_copy, created_at, created_by_user_id from public.processes where id = %L$$, :'process'),
  format($$values (14::bigint, %L::jsonb, '2000-01-01'::timestamptz, %L::uuid)$$, :'carbon_copy_v14', :'admin_a'),
  'values sent by service_role for revision, carbon_copy, created_at and created_by_user_id are ignored'
);

-- updated_at is maintained, never taken from the client -------------------------------------------
select tests.clear_authentication();
insert into public.processes (company_id, name, created_at, updated_at)
values (:'company_a', 'Packing', '2000-01-01', '2000-01-01')
returning id as packing \gset
select tests.authenticate_as_service_role();
update public.processes set updated_at = '1999-01-01' where id = :'packing';
select is(
  (select updated_at from public.processes where id = :'packing'), '2000-01-01'::timestamptz,
  'an update of updated_at alone is a no-op: updated_at keeps its value'
);
update public.processes set approved = true where id = :'packing';
select results_eq(
  format($$select revision, updated_at from public.processes where id = %L$$, :'packing'),
  $$values (1::bigint, now())$$,
  'an approval-only change keeps the revision but sets updated_at'
);

-- A process never moves to another company ---------------------------------------------------
select tests.authenticate_as(:'admin_a');
select throws_ok(
  format($$update public.processes set company_id = %L where id = %L$$, :'company_b', :'process'),
  '42501', 'permission denied for table processes',
  'an ADMIN cannot move a process to another company (no UPDATE privilege on company_id)'
);
select tests.authenticate_as_service_role();
select throws_ok(
  format($$update public.processes set company_id = %L where id = %L$$, :'company_b', :'process'),
  '42501', 'a process cannot move to another company',
  'service_role cannot move a process to another company (update_process_revision)'
);
select tests.clear_authentication();
select throws_ok(
  format($$update public.processes set company_id = %L, name = 'Moved' where id = %L$$, :'company_b', :'process'),
  '42501', 'a process cannot move to another company',
  'not even the superuser can move a process, with or without a definition change'
);
select results_eq(
  format($$select company_id, revision, name from public.processes where id = %L$$, :'process'),
  format($$values (%L::uuid, 14::bigint, 'Assembly v2X')$$, :'company_a'),
  'the refused moves left the process where and as it was'
);

select * from finish();
rollback;

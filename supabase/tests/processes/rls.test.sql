-- processes under RLS: active users of an active company read its processes; only an
-- active ADMIN of it creates, edits and deletes them; nothing crosses companies; anon
-- has no privilege at all. Refused updates and deletes are 0 rows, re-checked as the
-- superuser.
begin;
select plan(27);

-- The cast (tests.create_cast, helpers/setup.sql): companies A and B, and C which is
-- inactive; one user per row of the matrix.
select * from tests.create_cast() \gset

insert into public.processes (company_id, name) values
  (:'company_a', 'A assembly'), (:'company_a', 'A packing'),
  (:'company_b', 'B assembly'), (:'company_c', 'C assembly');
select id as process_a from public.processes where name = 'A assembly' \gset
select id as process_b from public.processes where name = 'B assembly' \gset

-- Reading -------------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok('select * from public.processes', '42501', 'permission denied for table processes',
  'anon cannot read processes');

select tests.authenticate_as(:'no_profile');
select is_empty('select * from public.processes', 'a signed-up user without a users row sees no process');

select tests.authenticate_as(:'no_company');
select is_empty('select * from public.processes', 'a user without a company sees no process');

select tests.authenticate_as(:'member_a');
select results_eq('select name from public.processes order by name', $$values ('A assembly'), ('A packing')$$,
  'a MEMBER of A reads A''s processes and no other');

select tests.authenticate_as(:'operator_a');
select results_eq('select name from public.processes order by name', $$values ('A assembly'), ('A packing')$$,
  'an OPERATOR of A reads A''s processes and no other');

select tests.authenticate_as(:'inactive_member_a');
select is_empty('select * from public.processes', 'an inactive MEMBER of A sees no process');

select tests.authenticate_as(:'member_c');
select is_empty('select * from public.processes', 'a MEMBER of an inactive company sees no process, not even its own');

select tests.authenticate_as(:'admin_b');
select results_eq('select name from public.processes', $$values ('B assembly')$$,
  'an ADMIN of B reads B''s processes only');

select tests.authenticate_as_service_role();
select is((select count(*)::int from public.processes), 4, 'service_role reads every process');

-- Members cannot write --------------------------------------------------------------------------
select tests.authenticate_as(:'member_a');
select throws_ok(format($$insert into public.processes (company_id, name) values (%L, 'by member')$$, :'company_a'),
  '42501', 'new row violates row-level security policy for table "processes"',
  'a MEMBER of A cannot create a process in A');
with changed as (update public.processes set name = 'renamed by member' returning 1)
select is(count(*)::int, 0, 'a MEMBER of A updates no process, not even A''s') from changed;
with deleted as (delete from public.processes returning 1)
select is(count(*)::int, 0, 'a MEMBER of A deletes no process') from deleted;

select tests.authenticate_as(:'operator_a');
with changed as (update public.processes set name = 'renamed by operator' returning 1)
select is(count(*)::int, 0, 'an OPERATOR of A updates no process') from changed;

-- Inactive ADMINs and ADMINs of inactive companies cannot write ------------------------------------
select tests.authenticate_as(:'inactive_admin_a');
select throws_ok(format($$insert into public.processes (company_id, name) values (%L, 'by inactive admin')$$, :'company_a'),
  '42501', 'new row violates row-level security policy for table "processes"',
  'an inactive ADMIN of A cannot create a process in A');
with changed as (update public.processes set name = 'renamed by inactive admin' returning 1)
select is(count(*)::int, 0, 'an inactive ADMIN of A updates no process') from changed;

select tests.authenticate_as(:'admin_c');
select throws_ok(format($$insert into public.processes (company_id, name) values (%L, 'by admin of C')$$, :'company_c'),
  '42501', 'new row violates row-level security policy for table "processes"',
  'an ADMIN of an inactive company cannot create a process in it');
with deleted as (delete from public.processes returning 1)
select is(count(*)::int, 0, 'an ADMIN of an inactive company deletes no process, not even its own') from deleted;

select tests.clear_authentication();
select results_eq('select name from public.processes order by name',
  $$values ('A assembly'), ('A packing'), ('B assembly'), ('C assembly')$$,
  'after the refused writes every process is there, unchanged (checked as the superuser)');

-- An ADMIN writes their own company's processes, and only those -----------------------------------
select tests.authenticate_as(:'admin_a');
select lives_ok(format($$insert into public.processes (company_id, name) values (%L, 'A painting')$$, :'company_a'),
  'an ADMIN of A creates a process in A');
select throws_ok(format($$insert into public.processes (company_id, name) values (%L, 'planted in B')$$, :'company_b'),
  '42501', 'new row violates row-level security policy for table "processes"',
  'an ADMIN of A cannot create a process in B');
with changed as (update public.processes set name = 'A assembly v2' where id = :'process_a' returning 1)
select is(count(*)::int, 1, 'an ADMIN of A edits A''s process') from changed;
with changed as (update public.processes set name = 'renamed by admin A' where id = :'process_b' returning 1)
select is(count(*)::int, 0, 'an ADMIN of A cannot edit B''s process') from changed;
with deleted as (delete from public.processes where name = 'A packing' returning 1)
select is(count(*)::int, 1, 'an ADMIN of A deletes A''s process') from deleted;
with deleted as (delete from public.processes where id = :'process_b' returning 1)
select is(count(*)::int, 0, 'an ADMIN of A cannot delete B''s process') from deleted;
select throws_ok(format($$update public.processes set company_id = %L where id = %L$$, :'company_b', :'process_a'),
  '42501', 'permission denied for table processes',
  'an ADMIN of A cannot move A''s process to B');

select tests.authenticate_as(:'admin_b');
with changed as (update public.processes set name = 'renamed by admin B' returning company_id)
select is(array_agg(company_id), array[:'company_b'::uuid],
          'an unfiltered update by the ADMIN of B touches B''s process only') from changed;

select tests.clear_authentication();
select results_eq(
  $$select c.name, p.name from public.processes p join public.companies c on c.id = p.company_id order by 1, 2$$,
  $$values ('Company A', 'A assembly v2'), ('Company A', 'A painting'),
           ('Company B', 'renamed by admin B'), ('Company C (inactive)', 'C assembly')$$,
  'every process ends as the allowed writes left it, in its own company'
);

select * from finish();
rollback;

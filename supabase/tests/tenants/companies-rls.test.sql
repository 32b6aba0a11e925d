-- companies under RLS: an active user of an active company reads that company and no
-- other; nobody writes companies through the API; anon has no privilege at all.
begin;
select plan(16);

-- The cast (tests.create_cast, helpers/setup.sql): companies A and B, and C which is
-- inactive; one user per row of the matrix.
select * from tests.create_cast() \gset

select tests.authenticate_as_anon();
select throws_ok('select * from public.companies', '42501', 'permission denied for table companies',
  'anon cannot read companies');

select tests.authenticate_as(:'no_profile');
select is_empty('select * from public.companies', 'a signed-up user without a users row sees no company');

select tests.authenticate_as(:'no_company');
select is_empty('select * from public.companies', 'a user without a company sees no company');

select tests.authenticate_as(:'member_a');
select results_eq('select name from public.companies', $$values ('Company A')$$,
  'a MEMBER of A sees A only');

select tests.authenticate_as(:'operator_a');
select results_eq('select name from public.companies', $$values ('Company A')$$,
  'an OPERATOR of A sees A only');

select tests.authenticate_as(:'admin_a');
select results_eq('select name from public.companies', $$values ('Company A')$$,
  'an ADMIN of A sees A only');

select tests.authenticate_as(:'inactive_member_a');
select is_empty('select * from public.companies', 'an inactive MEMBER of A sees no company');

select tests.authenticate_as(:'member_c');
select is_empty('select * from public.companies', 'a MEMBER of an inactive company does not see it');

select tests.authenticate_as(:'admin_b');
select results_eq('select name from public.companies', $$values ('Company B')$$,
  'an ADMIN of B sees B only');
select is_empty(format('select * from public.companies where id = %L', :'company_a'),
  'an ADMIN of B cannot fetch A by id');

select tests.authenticate_as_service_role();
select results_eq('select name from public.companies order by name',
  $$values ('Company A'), ('Company B'), ('Company C (inactive)')$$,
  'service_role sees every company');

-- Nobody writes companies through the API, not even an ADMIN of it.
select tests.authenticate_as(:'admin_a');
select throws_ok($$insert into public.companies (name) values ('Company D')$$,
  '42501', 'permission denied for table companies', 'an ADMIN cannot create a company');
select throws_ok(format($$update public.companies set name = 'Renamed' where id = %L$$, :'company_a'),
  '42501', 'permission denied for table companies', 'an ADMIN cannot rename their company');
select throws_ok(format($$update public.companies set is_active = true where id = %L$$, :'company_c'),
  '42501', 'permission denied for table companies', 'an ADMIN cannot reactivate a company');
select throws_ok(format($$delete from public.companies where id = %L$$, :'company_a'),
  '42501', 'permission denied for table companies', 'an ADMIN cannot delete their company');

select tests.clear_authentication();
select results_eq('select name, is_active from public.companies order by name',
  $$values ('Company A', true), ('Company B', true), ('Company C (inactive)', false)$$,
  'the companies are unchanged');

select * from finish();
rollback;

-- users under RLS: everyone reads their own row; an active ADMIN of an active company
-- reads that company's users; nobody writes users through the API (so nobody promotes
-- themself); anon has no privilege at all.
begin;
select plan(19);

-- The cast (tests.create_cast, helpers/setup.sql): companies A and B, and C which is
-- inactive; one user per row of the matrix.
select * from tests.create_cast() \gset

select tests.authenticate_as_anon();
select throws_ok('select * from public.users', '42501', 'permission denied for table users',
  'anon cannot read users');

select tests.authenticate_as(:'no_profile');
select is_empty('select * from public.users', 'a signed-up user without a users row sees no user');

select tests.authenticate_as(:'no_company');
select results_eq('select email from public.users', $$values ('no-company@example.test')$$,
  'a user without a company reads their own row');

select tests.authenticate_as(:'member_a');
select results_eq('select email from public.users', $$values ('member@a.test')$$,
  'a MEMBER of A reads their own row and no colleague''s');

select tests.authenticate_as(:'operator_a');
select results_eq('select email from public.users', $$values ('operator@a.test')$$,
  'an OPERATOR of A reads their own row only');

select tests.authenticate_as(:'inactive_member_a');
select results_eq('select email from public.users', $$values ('inactive-member@a.test')$$,
  'an inactive MEMBER still reads their own row (and only it)');

select tests.authenticate_as(:'inactive_admin_a');
select results_eq('select email from public.users', $$values ('inactive-admin@a.test')$$,
  'an inactive ADMIN of A reads their own row only, not the company''s users');

select tests.authenticate_as(:'admin_c');
select results_eq('select email from public.users', $$values ('admin@c.test')$$,
  'an ADMIN of an inactive company reads their own row only');

select tests.authenticate_as(:'admin_a');
select results_eq('select email from public.users order by email',
  $$values ('admin@a.test'), ('inactive-admin@a.test'), ('inactive-member@a.test'),
           ('member@a.test'), ('operator@a.test')$$,
  'an ADMIN of A reads every user of A, active or not, and nobody else');

select tests.authenticate_as(:'admin_b');
select results_eq('select email from public.users', $$values ('admin@b.test')$$,
  'an ADMIN of B reads B''s users only');
select is_empty(format('select * from public.users where supabase_uid = %L', :'member_a'),
  'an ADMIN of B cannot fetch a user of A by id');

select tests.authenticate_as_service_role();
select is((select count(*)::int from public.users), 9, 'service_role reads every users row');

-- Nobody writes users through the API ---------------------------------------------------------
select tests.authenticate_as(:'member_a');
select throws_ok(format($$update public.users set role = 'ADMIN' where supabase_uid = %L$$, :'member_a'),
  '42501', 'permission denied for table users', 'a MEMBER cannot promote themself to ADMIN');
select throws_ok(format($$update public.users set company_id = %L where supabase_uid = %L$$, :'company_b', :'member_a'),
  '42501', 'permission denied for table users', 'a MEMBER cannot move themself to another company');

select tests.authenticate_as(:'inactive_admin_a');
select throws_ok(format($$update public.users set is_active = true where supabase_uid = %L$$, :'inactive_admin_a'),
  '42501', 'permission denied for table users', 'an inactive ADMIN cannot reactivate themself');

select tests.authenticate_as(:'no_profile');
select throws_ok(
  format($$insert into public.users (supabase_uid, company_id, email, role) values (%L, %L, 'signed-up@example.test', 'ADMIN')$$,
         :'no_profile', :'company_a'),
  '42501', 'permission denied for table users', 'a signed-up user cannot create their own profile as an ADMIN of A');

select tests.authenticate_as(:'admin_a');
select throws_ok(format($$update public.users set role = 'ADMIN' where supabase_uid = %L$$, :'member_a'),
  '42501', 'permission denied for table users', 'an ADMIN cannot change roles through the API');
select throws_ok(format($$delete from public.users where supabase_uid = %L$$, :'member_a'),
  '42501', 'permission denied for table users', 'an ADMIN cannot delete users through the API');

select tests.clear_authentication();
select results_eq(
  $$select email, role, is_active from public.users
     where email in ('member@a.test', 'inactive-admin@a.test') order by email$$,
  $$values ('inactive-admin@a.test', 'ADMIN', false), ('member@a.test', 'MEMBER', true)$$,
  'the refused writes changed nothing'
);

select * from finish();
rollback;

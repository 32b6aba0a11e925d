-- webhooks_admin_company_id(): the portal's "may this caller manage webhooks, and whose?"
-- It answers with the policies' own predicate: the company of an active ADMIN of an active
-- company, null for everyone else, and no EXECUTE at all for anon.
begin;
select plan(12);

select * from tests.create_cast() \gset

select tests.authenticate_as(:'admin_a');
select is(public.webhooks_admin_company_id(), :'company_a'::uuid, 'an active ADMIN gets their company');
select tests.authenticate_as(:'admin_b');
select is(public.webhooks_admin_company_id(), :'company_b'::uuid, 'an ADMIN of another company gets theirs, not A');

select tests.authenticate_as(:'member_a');
select is(public.webhooks_admin_company_id(), null, 'a MEMBER gets null');
select tests.authenticate_as(:'operator_a');
select is(public.webhooks_admin_company_id(), null, 'an OPERATOR gets null');
select tests.authenticate_as(:'inactive_admin_a');
select is(public.webhooks_admin_company_id(), null, 'an inactive ADMIN gets null');
select tests.authenticate_as(:'admin_c');
select is(public.webhooks_admin_company_id(), null, 'an ADMIN of an inactive company gets null');
select tests.authenticate_as(:'no_profile');
select is(public.webhooks_admin_company_id(), null, 'a user without a profile gets null');
select tests.authenticate_as(:'no_company');
select is(public.webhooks_admin_company_id(), null, 'a user of no company gets null');

select tests.authenticate_as_anon();
select throws_ok('select public.webhooks_admin_company_id()',
  '42501', 'permission denied for function webhooks_admin_company_id', 'anon cannot call it');
select tests.clear_authentication();

-- It changes with the user's row, at once (no caching across statements).
update public.users set is_active = false where supabase_uid = :'admin_a';
select tests.authenticate_as(:'admin_a');
select is(public.webhooks_admin_company_id(), null, 'an ADMIN deactivated a moment ago gets null');
select tests.clear_authentication();
update public.users set is_active = true, role = 'MEMBER' where supabase_uid = :'admin_a';
select tests.authenticate_as(:'admin_a');
select is(public.webhooks_admin_company_id(), null, 'an ADMIN demoted to MEMBER gets null');
select tests.clear_authentication();

select function_privs_are('public', 'webhooks_admin_company_id', array[]::text[], 'authenticated',
  array['EXECUTE'], 'authenticated may execute it');

select * from finish();
rollback;

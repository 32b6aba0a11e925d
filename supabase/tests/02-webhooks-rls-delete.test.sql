-- RLS matrix for webhooks, DELETE: rows a caller cannot see are silently not deleted
-- (0 rows), and are checked still there afterwards as the superuser. Only an active
-- ADMIN of an active company deletes its own company's webhooks; service_role any.
begin;
select plan(11);

-- The cast: three companies (C is inactive), one webhook per company plus a second in A,
-- and one user per row of the matrix.
select tests.create_company('Company A') as company_a \gset
select tests.create_company('Company B') as company_b \gset
select tests.create_company('Company C (inactive)') as company_c \gset
update public.companies set is_active = false where id = :'company_c';

select tests.create_user('signed-up@example.test', null, with_profile => false) as no_profile \gset
select tests.create_user('member@a.test', :'company_a', 'MEMBER') as member_a \gset
select tests.create_user('inactive-admin@a.test', :'company_a', 'ADMIN', is_active => false) as inactive_admin_a \gset
select tests.create_user('admin@b.test', :'company_b', 'ADMIN') as admin_b \gset
select tests.create_user('admin@c.test', :'company_c', 'ADMIN') as admin_c \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset

select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a.example/created') as webhook_a1 \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example/revised') as webhook_a2 \gset
select tests.create_webhook(:'company_b', 'PROCESS_CREATED', 'https://b.example/created') as webhook_b \gset
select tests.create_webhook(:'company_c', 'PROCESS_CREATED', 'https://c.example/created') as webhook_c \gset

-- anon ---------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok(
  'delete from public.webhooks',
  '42501', 'permission denied for table webhooks',
  'anon cannot delete webhooks'
);

-- signed in, but not allowed: 0 rows ---------------------------------------------------------
select tests.authenticate_as(:'no_profile');
with deleted as (delete from public.webhooks returning 1)
select is(count(*)::int, 0, 'a signed-up user without a users row deletes no webhook') from deleted;

select tests.authenticate_as(:'member_a');
with deleted as (delete from public.webhooks returning 1)
select is(count(*)::int, 0, 'a MEMBER of A deletes no webhook') from deleted;

select tests.authenticate_as(:'inactive_admin_a');
with deleted as (delete from public.webhooks returning 1)
select is(count(*)::int, 0, 'an inactive ADMIN of A deletes no webhook') from deleted;

select tests.authenticate_as(:'admin_c');
with deleted as (delete from public.webhooks returning 1)
select is(count(*)::int, 0, 'an ADMIN of an inactive company deletes no webhook, not even its own') from deleted;

select tests.authenticate_as(:'admin_b');
with deleted as (delete from public.webhooks where company_id <> :'company_b' returning 1)
select is(count(*)::int, 0, 'the ADMIN of B deletes none of the other companies'' webhooks') from deleted;

select tests.clear_authentication();
select results_eq(
  'select url from public.webhooks order by url',
  $$values ('https://a.example/created'), ('https://a.example/revised'),
           ('https://b.example/created'), ('https://c.example/created')$$,
  'after the refused deletes every webhook is still there (checked as the superuser)'
);

-- allowed ------------------------------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
with deleted as (delete from public.webhooks where id = :'webhook_a1' returning 1)
select is(count(*)::int, 1, 'the ADMIN of A deletes one of A''s webhooks') from deleted;

select tests.authenticate_as(:'admin_b');
with deleted as (delete from public.webhooks returning company_id)
select is(array_agg(company_id), array[:'company_b'::uuid],
          'an unfiltered delete by the ADMIN of B removes B''s webhook only') from deleted;

select tests.authenticate_as_service_role();
with deleted as (delete from public.webhooks where id = :'webhook_c' returning 1)
select is(count(*)::int, 1, 'service_role deletes a webhook of any company') from deleted;

select tests.clear_authentication();
select results_eq(
  'select url from public.webhooks order by url',
  $$values ('https://a.example/revised')$$,
  'only the webhooks deleted by allowed callers are gone'
);

select * from finish();
rollback;

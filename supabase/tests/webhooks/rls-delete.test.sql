-- RLS matrix for webhooks, DELETE: rows a caller cannot see are silently not deleted
-- (0 rows), and are checked still there afterwards as the superuser. Only an active
-- ADMIN of an active company deletes its own company's webhooks; service_role any.
begin;
select plan(11);

-- The cast (tests.create_cast, helpers/setup.sql): three companies (C is inactive), one
-- webhook per company plus a second in A, and one user per row of the matrix.
select * from tests.create_cast(with_webhooks => true) \gset

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

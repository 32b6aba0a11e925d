-- RLS matrix for webhooks, INSERT: only an active ADMIN of an active company may create
-- a webhook, and only in that company. Everyone else gets the RLS error (anon: no
-- privilege at all), and nothing is written.
begin;
select plan(13);

-- The cast (tests.create_cast, helpers/setup.sql): three companies (C is inactive), one
-- webhook per company plus a second in A, and one user per row of the matrix.
select * from tests.create_cast(with_webhooks => true) \gset

-- The statement each caller tries: a PROCESS_DELETED webhook (tests.webhook_insert).

-- anon ---------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok(
  tests.webhook_insert(:'company_a', 'https://new.example/anon', 'PROCESS_DELETED'),
  '42501', 'permission denied for table webhooks',
  'anon cannot create a webhook'
);

-- denied by the policy ---------------------------------------------------------------------
select tests.authenticate_as(:'no_profile');
select throws_ok(
  tests.webhook_insert(:'company_a', 'https://new.example/no-profile', 'PROCESS_DELETED'),
  '42501', 'new row violates row-level security policy for table "webhooks"',
  'a signed-up user without a users row cannot create a webhook'
);

select tests.authenticate_as(:'member_a');
select throws_ok(
  tests.webhook_insert(:'company_a', 'https://new.example/member-a', 'PROCESS_DELETED'),
  '42501', 'new row violates row-level security policy for table "webhooks"',
  'a MEMBER of A cannot create a webhook in A'
);

select tests.authenticate_as(:'inactive_admin_a');
select throws_ok(
  tests.webhook_insert(:'company_a', 'https://new.example/inactive-admin-a', 'PROCESS_DELETED'),
  '42501', 'new row violates row-level security policy for table "webhooks"',
  'an inactive ADMIN of A cannot create a webhook in A'
);

select tests.authenticate_as(:'admin_c');
select throws_ok(
  tests.webhook_insert(:'company_c', 'https://new.example/admin-c', 'PROCESS_DELETED'),
  '42501', 'new row violates row-level security policy for table "webhooks"',
  'an ADMIN of an inactive company cannot create a webhook in it'
);

select tests.authenticate_as(:'admin_b');
select throws_ok(
  tests.webhook_insert(:'company_a', 'https://new.example/admin-b-into-a', 'PROCESS_DELETED'),
  '42501', 'new row violates row-level security policy for table "webhooks"',
  'an ADMIN of B cannot create a webhook in A'
);

-- allowed: the ADMIN of A, in A ------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url, description) values (%L, 'PROCESS_DELETED', 'https://new.example/admin-a', 'deletions')$$, :'company_a'),
  'an ADMIN of A creates a webhook in A'
);
select results_eq(
  $$select url, description, is_active from public.webhooks where url = 'https://new.example/admin-a'$$,
  $$values ('https://new.example/admin-a', 'deletions', true)$$,
  'the ADMIN of A reads back the webhook it created'
);
-- Columns outside the insert grant are refused, even in one's own company.
select throws_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url, disabled_reason) values (%L, 'PROCESS_DELETED', 'https://new.example/admin-a-2', 'x')$$, :'company_a'),
  '42501', 'permission denied for table webhooks',
  'an ADMIN of A cannot set disabled_reason (dispatcher bookkeeping) on insert'
);
select throws_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url, created_at) values (%L, 'PROCESS_DELETED', 'https://new.example/admin-a-3', '2000-01-01')$$, :'company_a'),
  '42501', 'permission denied for table webhooks',
  'an ADMIN of A cannot backdate created_at'
);

-- service_role may create anywhere -----------------------------------------------------------
select tests.authenticate_as_service_role();
select lives_ok(
  tests.webhook_insert(:'company_b', 'https://new.example/service-role', 'PROCESS_DELETED'),
  'service_role creates a webhook in B'
);

-- What was really written, seen as the superuser ------------------------------------------------
select tests.clear_authentication();
select results_eq(
  $$select c.name, w.url from public.webhooks w join public.companies c on c.id = w.company_id
     where w.url like 'https://new.example/%' order by w.url$$,
  $$values ('Company A', 'https://new.example/admin-a'), ('Company B', 'https://new.example/service-role')$$,
  'exactly the two allowed webhooks were written, each in its own company'
);
select is(
  (select count(*)::int from public.webhooks),
  6,
  'no other webhook was written by the refused attempts'
);

select * from finish();
rollback;

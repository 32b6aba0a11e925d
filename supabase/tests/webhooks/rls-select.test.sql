-- RLS matrix for webhooks, SELECT: only an active ADMIN of an active company sees that
-- company's webhooks; anon has no privilege at all; service_role sees everything.
begin;
select plan(10);

-- The cast (tests.create_cast, helpers/setup.sql): three companies (C is inactive), one
-- webhook per company plus a second in A, and one user per row of the matrix.
select * from tests.create_cast(with_webhooks => true) \gset

-- anon ---------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok(
  'select * from public.webhooks',
  '42501', 'permission denied for table webhooks',
  'anon cannot read webhooks at all'
);

-- signed in, but not an active ADMIN of an active company -----------------------------------
select tests.authenticate_as(:'no_profile');
select is_empty('select * from public.webhooks', 'a signed-up user without a users row sees no webhook');

select tests.authenticate_as(:'member_a');
select is_empty('select * from public.webhooks', 'a MEMBER of A sees no webhook, not even A''s');

select tests.authenticate_as(:'inactive_admin_a');
select is_empty('select * from public.webhooks', 'an inactive ADMIN of A sees no webhook');

select tests.authenticate_as(:'admin_c');
select is_empty('select * from public.webhooks', 'an ADMIN of an inactive company sees no webhook, not even its own');

-- ADMINs see exactly their own company's ---------------------------------------------------
select tests.authenticate_as(:'admin_b');
select results_eq(
  'select url from public.webhooks order by url',
  $$values ('https://b.example/created')$$,
  'an ADMIN of B sees B''s webhook only'
);

select tests.authenticate_as(:'admin_a');
select results_eq(
  'select url from public.webhooks order by url',
  $$values ('https://a.example/created'), ('https://a.example/revised')$$,
  'an ADMIN of A sees both of A''s webhooks and nothing else'
);
select is_empty(
  format('select * from public.webhooks where id = %L', :'webhook_b'),
  'an ADMIN of A cannot fetch B''s webhook by id'
);

-- service_role bypasses RLS ------------------------------------------------------------------
select tests.authenticate_as_service_role();
select results_eq(
  'select url from public.webhooks order by url',
  $$values ('https://a.example/created'), ('https://a.example/revised'),
           ('https://b.example/created'), ('https://c.example/created')$$,
  'service_role sees every webhook'
);

-- Losing the ADMIN role takes effect on the next statement: nothing is cached per session.
select tests.clear_authentication();
update public.users set role = 'MEMBER' where supabase_uid = :'admin_b';
select tests.authenticate_as(:'admin_b');
select is_empty('select * from public.webhooks', 'an ADMIN of B demoted to MEMBER no longer sees B''s webhook');

select tests.clear_authentication();
select * from finish();
rollback;

-- RLS matrix for webhooks, UPDATE: rows a caller cannot see are silently not updated
-- (0 rows), and are checked unchanged afterwards as the superuser. Only an active ADMIN
-- of an active company changes its own company's webhooks; service_role changes any.
begin;
select plan(14);

-- The cast (tests.create_cast, helpers/setup.sql): three companies (C is inactive), one
-- webhook per company plus a second in A, and one user per row of the matrix.
select * from tests.create_cast(with_webhooks => true) \gset

-- anon ---------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok(
  $$update public.webhooks set description = 'changed by anon'$$,
  '42501', 'permission denied for table webhooks',
  'anon cannot update webhooks'
);

-- signed in, but not allowed: 0 rows ---------------------------------------------------------
select tests.authenticate_as(:'no_profile');
with changed as (update public.webhooks set description = 'changed by a user without profile' returning 1)
select is(count(*)::int, 0, 'a signed-up user without a users row updates no webhook') from changed;

select tests.authenticate_as(:'member_a');
with changed as (update public.webhooks set description = 'changed by member A' returning 1)
select is(count(*)::int, 0, 'a MEMBER of A updates no webhook') from changed;

select tests.authenticate_as(:'inactive_admin_a');
with changed as (update public.webhooks set description = 'changed by inactive admin A' returning 1)
select is(count(*)::int, 0, 'an inactive ADMIN of A updates no webhook') from changed;

select tests.authenticate_as(:'admin_c');
with changed as (update public.webhooks set description = 'changed by admin C' returning 1)
select is(count(*)::int, 0, 'an ADMIN of an inactive company updates no webhook, not even its own') from changed;

-- the ADMIN of B: its own row only -----------------------------------------------------------
select tests.authenticate_as(:'admin_b');
with changed as (update public.webhooks set description = 'changed by admin B' returning company_id)
select is(array_agg(company_id), array[:'company_b'::uuid],
          'an unfiltered update by the ADMIN of B touches B''s webhook only') from changed;
with changed as (update public.webhooks set url = 'https://evil.example/b' where id = :'webhook_a1' returning 1)
select is(count(*)::int, 0, 'the ADMIN of B cannot update A''s webhook by id') from changed;

select tests.clear_authentication();
select results_eq(
  $$select url, description from public.webhooks order by url$$,
  $$values ('https://a.example/created', null::text), ('https://a.example/revised', null),
           ('https://b.example/created', 'changed by admin B'), ('https://c.example/created', null)$$,
  'after the refused updates only B''s webhook changed (checked as the superuser)'
);

-- the ADMIN of A: its own rows ---------------------------------------------------------------
select tests.authenticate_as(:'admin_a');
with changed as (
  update public.webhooks
     set url = 'https://a.example/created-v2', trigger_type = 'PROCESS_DELETED', description = 'moved endpoint'
   where id = :'webhook_a1'
  returning 1)
select is(count(*)::int, 1, 'the ADMIN of A updates A''s webhook') from changed;
with changed as (update public.webhooks set description = 'changed by admin A' where id = :'webhook_b' returning 1)
select is(count(*)::int, 0, 'the ADMIN of A cannot update B''s webhook by id') from changed;
select throws_ok(
  format($$update public.webhooks set disabled_reason = 'x' where id = %L$$, :'webhook_a1'),
  '42501', 'permission denied for table webhooks',
  'the ADMIN of A cannot write disabled_reason (dispatcher bookkeeping)'
);
select throws_ok(
  format($$update public.webhooks set id = gen_random_uuid() where id = %L$$, :'webhook_a1'),
  '42501', 'permission denied for table webhooks',
  'the ADMIN of A cannot change a webhook''s id'
);

-- service_role: any row ------------------------------------------------------------------------
select tests.authenticate_as_service_role();
with changed as (update public.webhooks set description = 'changed by service_role' where id = :'webhook_c' returning 1)
select is(count(*)::int, 1, 'service_role updates a webhook of any company') from changed;

select tests.clear_authentication();
select results_eq(
  $$select c.name, w.trigger_type, w.url, w.description
      from public.webhooks w join public.companies c on c.id = w.company_id
     order by w.url$$,
  $$values ('Company A', 'PROCESS_DELETED', 'https://a.example/created-v2', 'moved endpoint'),
           ('Company A', 'PROCESS_REVISED', 'https://a.example/revised', null::text),
           ('Company B', 'PROCESS_CREATED', 'https://b.example/created', 'changed by admin B'),
           ('Company C (inactive)', 'PROCESS_CREATED', 'https://c.example/created', 'changed by service_role')$$,
  'every webhook ends exactly as the allowed updates left it, in its own company'
);

select * from finish();
rollback;

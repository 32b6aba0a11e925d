-- Nobody moves a webhook to another company: an ADMIN has no UPDATE privilege on
-- company_id, cannot insert into another company, cannot take over another company's
-- row through an upsert, and service_role and the superuser (who bypass RLS and column
-- grants) are stopped by the guard_row trigger.
begin;
select plan(8);

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

select tests.authenticate_as(:'admin_a');
select throws_ok(
  format($$update public.webhooks set company_id = %L where id = %L$$, :'company_b', :'webhook_a1'),
  '42501', 'permission denied for table webhooks',
  'the ADMIN of A cannot move A''s webhook to B (no UPDATE privilege on company_id)'
);
select throws_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'https://a.example/planted-in-b')$$, :'company_b'),
  '42501', 'new row violates row-level security policy for table "webhooks"',
  'the ADMIN of A cannot create a webhook in B'
);
select throws_ok(
  format($$insert into public.webhooks (id, company_id, trigger_type, url) values (%L, %L, 'PROCESS_CREATED', 'https://a.example/hijack')
           on conflict (id) do update set url = excluded.url$$, :'webhook_b', :'company_a'),
  '42501', 'new row violates row-level security policy (USING expression) for table "webhooks"',
  'the ADMIN of A cannot take over B''s webhook by upserting its id'
);

select tests.authenticate_as(:'admin_b');
select throws_ok(
  format($$update public.webhooks set company_id = %L where id = %L$$, :'company_b', :'webhook_a1'),
  '42501', 'permission denied for table webhooks',
  'the ADMIN of B cannot pull A''s webhook into B'
);

select tests.authenticate_as_service_role();
select throws_ok(
  format($$update public.webhooks set company_id = %L where id = %L$$, :'company_b', :'webhook_a1'),
  '42501', 'a webhook cannot move to another company',
  'service_role cannot move a webhook either (guard_row trigger)'
);

select tests.clear_authentication();
select throws_ok(
  format($$update public.webhooks set company_id = %L where id = %L$$, :'company_b', :'webhook_a1'),
  '42501', 'a webhook cannot move to another company',
  'not even the superuser can move a webhook'
);
select lives_ok(
  format($$update public.webhooks set company_id = %L where id = %L$$, :'company_a', :'webhook_a1'),
  'setting company_id to the value it already has is not a move'
);

select results_eq(
  $$select c.name, w.url from public.webhooks w join public.companies c on c.id = w.company_id order by w.url$$,
  $$values ('Company A', 'https://a.example/created'), ('Company A', 'https://a.example/revised'),
           ('Company B', 'https://b.example/created'), ('Company C (inactive)', 'https://c.example/created')$$,
  'every webhook is still in its own company, and none was added'
);

select * from finish();
rollback;

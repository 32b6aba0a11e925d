-- Nobody moves a webhook to another company: an ADMIN has no UPDATE privilege on
-- company_id, cannot insert into another company, cannot take over another company's
-- row through an upsert, and service_role and the superuser (who bypass RLS and column
-- grants) are stopped by the guard_row trigger.
begin;
select plan(8);

-- The cast (tests.create_cast, helpers/setup.sql): three companies (C is inactive), one
-- webhook per company plus a second in A, and one user per row of the matrix.
select * from tests.create_cast(with_webhooks => true) \gset

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
  '42501', 'permission denied for table webhooks',
  'the ADMIN of A cannot take over B''s webhook by upserting its id (clients never choose ids)'
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

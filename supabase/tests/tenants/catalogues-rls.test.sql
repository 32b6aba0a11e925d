-- The catalogues user_types and webhook_trigger_types: any signed-in user reads them
-- (a client needs them to build forms), nobody writes them through the API, anon has
-- no privilege at all.
begin;
select plan(10);

select tests.create_company('Company A') as company_a \gset
select tests.create_user('signed-up@example.test', null, with_profile => false) as no_profile \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset

select tests.authenticate_as_anon();
select throws_ok('select * from public.user_types', '42501', 'permission denied for table user_types',
  'anon cannot read user_types');
select throws_ok('select * from public.webhook_trigger_types', '42501', 'permission denied for table webhook_trigger_types',
  'anon cannot read webhook_trigger_types');

select tests.authenticate_as(:'no_profile');
select set_has('select type from public.user_types', $$values ('ADMIN'), ('MEMBER'), ('OPERATOR')$$,
  'a signed-in user without a profile reads the role catalogue');
select set_has('select name from public.webhook_trigger_types',
  $$values ('PROCESS_CREATED'), ('PROCESS_REVISED'), ('PROCESS_DELETED'), ('WEBHOOK_TEST')$$,
  'a signed-in user without a profile reads the webhook trigger types');

select tests.authenticate_as(:'admin_a');
select isnt_empty($$select description from public.webhook_trigger_types where name = 'WEBHOOK_TEST'$$,
  'an ADMIN reads the webhook trigger types');
select throws_ok($$insert into public.webhook_trigger_types (name, description) values ('ORDER_SHIPPED', 'x')$$,
  '42501', 'permission denied for table webhook_trigger_types', 'an ADMIN cannot add a trigger type');
select throws_ok($$update public.webhook_trigger_types set description = 'x' where name = 'WEBHOOK_TEST'$$,
  '42501', 'permission denied for table webhook_trigger_types', 'an ADMIN cannot edit a trigger type');
select throws_ok($$delete from public.webhook_trigger_types where name = 'WEBHOOK_TEST'$$,
  '42501', 'permission denied for table webhook_trigger_types', 'an ADMIN cannot delete a trigger type');
select throws_ok($$insert into public.user_types (type, description) values ('OWNER', 'x')$$,
  '42501', 'permission denied for table user_types', 'an ADMIN cannot add a role');

select tests.authenticate_as_service_role();
select set_has('select type from public.user_types', $$values ('ADMIN'), ('MEMBER'), ('OPERATOR')$$,
  'service_role reads the role catalogue');

select tests.clear_authentication();
select * from finish();
rollback;

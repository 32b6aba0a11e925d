-- The bookkeeping of a webhook row, kept by its triggers whatever the client sends:
-- updated_at moves on every update and created_at never; disabling records when
-- (disabled_at) and why (disabled_reason, 'disabled by an admin' unless a reason is
-- given); editing a disabled webhook keeps both; re-enabling clears them and the failing
-- streak (private.webhook_endpoints.failing_since, where the endpoint's health lives).
begin;
select plan(6);

select tests.create_company('Company A') as company_a \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset

insert into public.webhooks (company_id, trigger_type, url, created_at, updated_at)
values (:'company_a', 'PROCESS_DELETED', 'https://hooks.example/bookkeeping', '2000-01-01', '2000-01-01')
returning id as bookkeeping \gset
update private.webhook_endpoints set failing_since = '2000-01-03' where webhook_id = :'bookkeeping';

select tests.authenticate_as(:'admin_a');
update public.webhooks set description = 'renamed' where id = :'bookkeeping';
select results_eq(
  format($$select created_at, updated_at from public.webhooks where id = %L$$, :'bookkeeping'),
  $$values ('2000-01-01'::timestamptz, now())$$,
  'an update sets updated_at and keeps created_at'
);

update public.webhooks set is_active = false where id = :'bookkeeping';
select results_eq(
  format($$select is_active, disabled_at, disabled_reason from public.webhooks where id = %L$$, :'bookkeeping'),
  $$values (false, now(), 'disabled by an admin')$$,
  'disabling records when (disabled_at) and why (disabled_reason)'
);

select tests.clear_authentication();
update public.webhooks set disabled_at = '2000-01-04' where id = :'bookkeeping';
select tests.authenticate_as(:'admin_a');
update public.webhooks set description = 'renamed while disabled' where id = :'bookkeeping';
select results_eq(
  format($$select disabled_at, disabled_reason from public.webhooks where id = %L$$, :'bookkeeping'),
  $$values ('2000-01-04'::timestamptz, 'disabled by an admin')$$,
  'editing a disabled webhook keeps when and why it was disabled'
);

update public.webhooks set is_active = true where id = :'bookkeeping';
select results_eq(
  format($$select w.is_active, w.disabled_at, w.disabled_reason, e.failing_since
             from public.webhooks w join private.webhook_endpoints e on e.webhook_id = w.id where w.id = %L$$, :'bookkeeping'),
  $$values (true, null::timestamptz, null::text, null::timestamptz)$$,
  're-enabling clears disabled_at, disabled_reason and failing_since'
);

insert into public.webhooks (company_id, trigger_type, url, is_active)
values (:'company_a', 'PROCESS_DELETED', 'https://hooks.example/born-disabled', false);
select results_eq(
  $$select disabled_at, disabled_reason from public.webhooks where url = 'https://hooks.example/born-disabled'$$,
  $$values (now(), 'disabled by an admin')$$,
  'a webhook created disabled records disabled_at and a reason'
);

select tests.authenticate_as_service_role();
update public.webhooks set is_active = false, disabled_reason = 'the endpoint answered 410 Gone' where id = :'bookkeeping';
select is(
  (select disabled_reason from public.webhooks where id = :'bookkeeping'),
  'the endpoint answered 410 Gone',
  'a reason given with the disable is kept'
);

select tests.clear_authentication();
select * from finish();
rollback;

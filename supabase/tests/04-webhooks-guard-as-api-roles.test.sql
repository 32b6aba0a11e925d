-- Regression: tg_webhooks__guard_row reads private.webhook_settings with the caller's
-- rights, and neither authenticated nor service_role may read it.
begin;
select plan(5);

select tests.create_company('Company A') as company_a \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset

update private.webhook_settings set allow_plain_http = false;
select tests.authenticate_as(:'admin_a');
select throws_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'http://hooks.example/plain')$$, :'company_a'),
  '23514', 'webhook url must use https (webhooks_url_https_required): http://hooks.example/plain',
  'an ADMIN sending plain http where it is not allowed gets webhooks_url_https_required');
select throws_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', null)$$, :'company_a'),
  '23502', 'null value in column "url" of relation "webhooks" violates not-null constraint',
  'an ADMIN sending a null url gets the not-null error');

select tests.clear_authentication();
update private.webhook_settings set allow_plain_http = true;
select tests.authenticate_as(:'admin_a');
select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'http://127.0.0.1:54399/admin')$$, :'company_a'),
  'an ADMIN registers a local http receiver where allow_plain_http is true');
select tests.authenticate_as_service_role();
select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'http://127.0.0.1:54399/service')$$, :'company_a'),
  'service_role registers a local http receiver where allow_plain_http is true');

-- https works today only because the planner folds `new.url ~* '^http://'` to false in a
-- custom plan and drops the subquery; a generic plan keeps it.
select tests.authenticate_as(:'admin_a');
set local plan_cache_mode = force_generic_plan;
select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'https://hooks.example/generic-plan')$$, :'company_a'),
  'an ADMIN registers an https webhook whatever plan the guard trigger gets');

select tests.clear_authentication();
select * from finish();
rollback;

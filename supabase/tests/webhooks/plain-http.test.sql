-- Plain http:// endpoints are refused unless private.webhook_settings.allow_plain_http is
-- true (false on a real project; the local seed sets it), with SQLSTATE 23514, an error that
-- names webhooks_url_https_required, and a hint. The same for every caller: the superuser,
-- an ADMIN through the API and the service role, neither of which may read the setting
-- itself (the trigger reads it with its own rights). It is checked when a url is set, in any
-- letter case, on insert and on update; https is never affected, whatever plan the trigger
-- gets.
begin;
select plan(12);

select tests.create_company('Company A') as company_a \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://hooks.example/serial') as existing \gset


-- Where plain http is not allowed -------------------------------------------------------------
update private.webhook_settings set allow_plain_http = false;

-- As the superuser.
select throws_ok(tests.webhook_insert(:'company_a', 'http://hooks.example/plain'), '23514',
  'webhook url must use https (webhooks_url_https_required): http://hooks.example/plain',
  'plain http:// is rejected where allow_plain_http is false');
select is(tests.error_constraint(tests.webhook_insert(:'company_a', 'http://hooks.example/plain')), 'webhooks_url_https_required',
  'the error names the constraint webhooks_url_https_required');
select throws_ok(tests.webhook_insert(:'company_a', 'HTTP://HOOKS.EXAMPLE/plain'), '23514',
  'webhook url must use https (webhooks_url_https_required): HTTP://HOOKS.EXAMPLE/plain',
  'an upper-case HTTP:// is rejected too');
select throws_ok(
  format($$update public.webhooks set url = 'http://hooks.example/serial' where id = %L$$, :'existing'),
  '23514', 'webhook url must use https (webhooks_url_https_required): http://hooks.example/serial',
  'changing an https URL to plain http is rejected too');

-- As an ADMIN, who cannot read private.webhook_settings: the https error, not a permission error.
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

-- Where plain http is allowed (local receivers) ---------------------------------------------------
update private.webhook_settings set allow_plain_http = true;

select lives_ok(tests.webhook_insert(:'company_a', 'http://hooks.example/plain'), 'plain http:// is accepted where allow_plain_http is true');
select lives_ok(tests.webhook_insert(:'company_a', 'http://127.0.0.1:54399/receiver'), 'a local http receiver with a port is accepted');

select tests.authenticate_as(:'admin_a');
select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'http://127.0.0.1:54399/admin')$$, :'company_a'),
  'an ADMIN registers a local http receiver where allow_plain_http is true');
select tests.authenticate_as_service_role();
select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'http://127.0.0.1:54399/service')$$, :'company_a'),
  'service_role registers a local http receiver where allow_plain_http is true');

-- https, under a generic plan too: the planner must not be what keeps the setting's subquery
-- from running as the caller (a custom plan folds `new.url ~* '^http://'` to false).
select tests.authenticate_as(:'admin_a');
set local plan_cache_mode = force_generic_plan;
select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'https://hooks.example/generic-plan')$$, :'company_a'),
  'an ADMIN registers an https webhook whatever plan the https trigger gets');

select tests.clear_authentication();

-- One home: the rule is the webhooks_url_https_required trigger's, which
-- src/database.rules.ts reads its wording from. No other function restates it.
select is(
  (select array_agg(p.proname::text order by p.proname)
     from pg_proc p
    where p.pronamespace in ('private'::regnamespace, 'public'::regnamespace)
      and p.prosrc like '%allow_plain_http%'),
  array['tg_webhooks__require_https_url'],
  'only the webhooks_url_https_required trigger function checks allow_plain_http');

select * from finish();
rollback;

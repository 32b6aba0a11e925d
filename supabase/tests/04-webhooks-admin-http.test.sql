-- tg_webhooks__guard_row runs as the caller and reads private.webhook_settings, which
-- authenticated cannot select: an ADMIN creating an http:// webhook gets 42501
-- "permission denied for table webhook_settings" (locally, where http is allowed, and in
-- production, where the intended error is 23514 webhooks_url_https_required).
begin;
select plan(2);
select tests.create_company('Acme') as company_a \gset
select tests.create_user('admin@acme.test', :'company_a', 'ADMIN') as admin_a \gset
update private.webhook_settings set allow_plain_http = true;
select tests.authenticate_as(:'admin_a');
select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_REVISED', 'http://127.0.0.1:9999/hook')$$, :'company_a'),
  'where plain http is allowed, an ADMIN can register an http:// endpoint');
select tests.clear_authentication();
update private.webhook_settings set allow_plain_http = false;
select tests.authenticate_as(:'admin_a');
select throws_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_REVISED', 'http://127.0.0.1:9998/hook')$$, :'company_a'),
  '23514', 'webhook url must use https (webhooks_url_https_required): http://127.0.0.1:9998/hook',
  'where it is not, the ADMIN gets the https error, not a permission error');
select tests.clear_authentication();
select * from finish();
rollback;

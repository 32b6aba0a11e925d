-- On hosted Supabase (private.webhook_settings.hosted, true unless a deployment says
-- otherwise), a webhook url on port 25 or 587, which Edge Functions cannot reach, is
-- refused with the named rule webhooks_url_port_blocked (23514) and changes nothing.
-- Elsewhere those ports are ordinary ports.
begin;
select plan(19);

select tests.create_company('Company A') as company_a \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset

select col_default_is('private', 'webhook_settings', 'hosted', 'true',
  'a real project counts as hosted unless it says otherwise (the safe default)');
select is((select hosted from private.webhook_settings), false, 'the local seed says the local stack is not hosted');

-- Made while not hosted: a row on port 25 that must stay editable afterwards.
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://mail.example:25/in') as on_port_25 \gset
update private.webhook_settings set hosted = true;

select tests.authenticate_as(:'admin_a');
select throws_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:25/serial'), '23514',
  'webhook url port 25 is blocked outbound on hosted Supabase (webhooks_url_port_blocked): https://hooks.example:25/serial',
  'port 25 is refused, the message names the rule');
select throws_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:587/serial'), '23514',
  'webhook url port 587 is blocked outbound on hosted Supabase (webhooks_url_port_blocked): https://hooks.example:587/serial',
  'port 587 is refused');
select is(tests.error_constraint(tests.webhook_insert(:'company_a', 'https://hooks.example:25/serial')), 'webhooks_url_port_blocked',
  'the error carries the constraint name webhooks_url_port_blocked');
select throws_ok(tests.webhook_insert(:'company_a', 'HTTPS://HOOKS.EXAMPLE:25'), '23514', null, 'upper case, no path: refused');
select throws_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:587?x=1'), '23514', null, 'port followed by a query: refused');
select throws_ok(tests.webhook_insert(:'company_a', 'https://[2001:db8::1]:25/serial'), '23514', null, 'an IPv6 literal host on port 25: refused');
select throws_ok(tests.webhook_insert(:'company_a', 'https://203.0.113.9:587/serial'), '23514', null, 'an IPv4 literal host on port 587: refused');
select throws_ok(
  format('update public.webhooks set url = %L where id = %L', 'https://mail.example:587/in', :'on_port_25'),
  '23514', null, 'changing a url to port 587 is refused too');
select is(tests.error_constraint(tests.webhook_insert(:'company_a', 'https://u:25@hooks.example/serial')), 'webhooks_url_no_credentials',
  'a :25 inside user:password@ is not a port: the credentials rule refuses it');

select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:465/serial'), 'port 465 is not blocked');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:2525/serial'), 'port 2525 is not blocked');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:250/serial'), 'port 250 is not port 25');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/25/587'), 'numbers in the path are not ports');
select lives_ok(
  format('update public.webhooks set is_active = false, description = %L where id = %L', 'old mail relay', :'on_port_25'),
  'a row on a blocked port made earlier can still be edited and disabled');

select tests.clear_authentication();
select is(
  (select array_agg(url order by url) from public.webhooks where company_id = :'company_a'),
  array['https://hooks.example/25/587', 'https://hooks.example:250/serial', 'https://hooks.example:2525/serial',
        'https://hooks.example:465/serial', 'https://mail.example:25/in'],
  'the refused statements changed nothing'
);

update private.webhook_settings set hosted = false;
select tests.authenticate_as(:'admin_a');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:25/serial'), 'not hosted: port 25 is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:587/serial'), 'not hosted: port 587 is accepted');

select tests.clear_authentication();
select * from finish();
rollback;

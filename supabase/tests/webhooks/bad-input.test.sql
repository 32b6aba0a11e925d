-- Bad webhook input gets a named constraint and a SQLSTATE, and changes nothing; good
-- URLs pass. The url rules (webhooks_url_*): http(s) only, absolute with a host, no
-- user:password@, no #fragment, a port from 1 to 65535, at most 2048 characters, unique
-- per company and trigger type. Inputs are sent by the ADMIN of the company, as a client
-- would, except where a check needs a caller past RLS (a missing company, no company).
-- Plain http has its own file (plain-http.test.sql): it depends on a deployment setting.
begin;
select plan(39);

select tests.create_company('Company A') as company_a \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://hooks.example/serial') as existing \gset

-- throws_ok for a statement that a check constraint of webhooks refuses: SQLSTATE 23514 and
-- the error that names the constraint.
create function pg_temp.violates_check(statement text, check_name text, test_description text)
returns text
language sql
as $$
  select throws_ok(statement, '23514',
    format('new row for relation "webhooks" violates check constraint "%s"', check_name),
    test_description)
$$;

select tests.authenticate_as(:'admin_a');

-- URL: scheme -------------------------------------------------------------------------------
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'ftp://hooks.example/serial'), 'webhooks_url_scheme',
  'ftp:// is rejected (webhooks_url_scheme)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'hooks.example/serial'), 'webhooks_url_scheme',
  'a URL without a scheme is rejected (webhooks_url_scheme)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', '/hooks/serial'), 'webhooks_url_scheme',
  'a relative URL is rejected (webhooks_url_scheme)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'javascript:alert(1)'), 'webhooks_url_scheme',
  'a javascript: URL is rejected (webhooks_url_scheme)');

-- URL: credentials, fragment, length ----------------------------------------------------------
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://user:pw@hooks.example/serial'), 'webhooks_url_no_credentials',
  'user:password@ is rejected (webhooks_url_no_credentials)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://user@hooks.example/serial'), 'webhooks_url_no_credentials',
  'a bare user@ is rejected (webhooks_url_no_credentials)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://hooks.example/serial#frag'), 'webhooks_url_no_fragment',
  'a #fragment is rejected (webhooks_url_no_fragment)');
select pg_temp.violates_check(
  tests.webhook_insert(:'company_a', 'https://hooks.example/' || repeat('a', 2049 - length('https://hooks.example/'))), 'webhooks_url_length',
  'a 2049-character URL is rejected (webhooks_url_length)');

-- URL: shape -----------------------------------------------------------------------------------
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://hooks.example/a b'), 'webhooks_url_wellformed',
  'a space in the path is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', E'https://hooks.example/a\tb'), 'webhooks_url_wellformed',
  'a tab in the path is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://hooks.example/serial '), 'webhooks_url_wellformed',
  'trailing whitespace is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https:///x'), 'webhooks_url_wellformed',
  'an empty host is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https:// hooks.example/'), 'webhooks_url_wellformed',
  'a space before the host is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://-hooks.example/'), 'webhooks_url_wellformed',
  'a host starting with a hyphen is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://hooks.example:99999/x'), 'webhooks_url_wellformed',
  'port 99999 is refused');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://hooks.example:0/x'), 'webhooks_url_wellformed',
  'port 0 is refused');
select pg_temp.violates_check(tests.webhook_insert(:'company_a', 'https://hooks.example:65536/x'), 'webhooks_url_wellformed',
  'port 65536 is refused');

-- Other columns ----------------------------------------------------------------------------------
select throws_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/other', 'PROCESS_ARCHIVED'), '23503',
  'insert or update on table "webhooks" violates foreign key constraint "webhooks_trigger_type_fkey"',
  'an unknown trigger type is rejected (webhooks_trigger_type_fkey)');
select throws_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/serial', 'PROCESS_CREATED'), '23505',
  'duplicate key value violates unique constraint "webhooks_company_trigger_url_key"',
  'the same (company, trigger type, url) twice is rejected (webhooks_company_trigger_url_key)');
select throws_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/other', null), '23502',
  'null value in column "trigger_type" of relation "webhooks" violates not-null constraint',
  'a null trigger type is rejected');
select pg_temp.violates_check(
  tests.webhook_insert(:'company_a', 'https://hooks.example/other', 'PROCESS_REVISED', repeat('d', 501)), 'webhooks_description_length',
  'a 501-character description is rejected (webhooks_description_length)');
select pg_temp.violates_check(
  format($$update public.webhooks set url = 'ftp://hooks.example/serial' where id = %L$$, :'existing'), 'webhooks_url_scheme',
  'a bad URL is rejected on update too');
select throws_ok(
  format($$update public.webhooks set trigger_type = 'NOPE' where id = %L$$, :'existing'),
  '23503', 'insert or update on table "webhooks" violates foreign key constraint "webhooks_trigger_type_fkey"',
  'an unknown trigger type is rejected on update too');

-- Good input passes ---------------------------------------------------------------------------------
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:8443/serial'), 'https with a port is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example:65535/x'), 'port 65535 is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/a/b/c'), 'https with a path is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/in?source=serial&v=2'), 'https with a query is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example?source=serial'), 'a query straight after the host is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://[2001:db8::1]:8443/serial'), 'an IPv6 literal with a port is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://192.0.2.10/serial'), 'an IPv4 literal is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example'), 'a bare host is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/' || repeat('a', 2048 - length('https://hooks.example/'))),
  'a URL of exactly 2048 characters is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/serial', 'PROCESS_REVISED'),
  'the same URL for another trigger type is accepted');
select lives_ok(tests.webhook_insert(:'company_a', 'https://hooks.example/described', 'PROCESS_REVISED', repeat('d', 500)),
  'a 500-character description is accepted');

select tests.clear_authentication();
select is(
  (select count(*)::int from public.webhooks),
  12,
  'the rejected inputs wrote nothing: the existing webhook plus the eleven accepted ones'
);
select is(
  (select url from public.webhooks where id = :'existing'),
  'https://hooks.example/serial',
  'the rejected updates left the existing webhook as it was'
);

-- As the superuser: a caller past RLS, who would otherwise get the RLS error first -------------------
select throws_ok(
  $$insert into public.webhooks (company_id, trigger_type, url) values ('00000000-0000-0000-0000-000000000000', 'PROCESS_CREATED', 'https://hooks.example/x')$$,
  '23503', 'insert or update on table "webhooks" violates foreign key constraint "webhooks_company_id_fkey"',
  'a company that does not exist is rejected (webhooks_company_id_fkey)');
select throws_ok(
  $$insert into public.webhooks (company_id, trigger_type, url) values (null, 'PROCESS_CREATED', 'https://hooks.example/x')$$,
  '23502', 'null value in column "company_id" of relation "webhooks" violates not-null constraint',
  'a null company is rejected');
select throws_ok(tests.webhook_insert(:'company_a', null), '23502',
  'null value in column "url" of relation "webhooks" violates not-null constraint',
  'a null url is rejected');

select * from finish();
rollback;

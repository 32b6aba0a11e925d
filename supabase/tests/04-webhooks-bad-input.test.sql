-- Bad webhook input gets a named constraint and a SQLSTATE, and changes nothing; good
-- URLs pass. Inputs are sent by the ADMIN of the company, as a client would, except
-- where a check needs a caller past RLS (a missing company) or reads
-- private.webhook_settings (plain http, null url): those run as the superuser.
begin;
select plan(47);

select tests.create_company('Company A') as company_a \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://hooks.example/serial') as existing \gset

create function pg_temp.insert_sql(url text, trigger_type text default 'PROCESS_REVISED', description text default null)
returns text
language sql
as $$
  select format('insert into public.webhooks (company_id, trigger_type, url, description) values (%L, %L, %L, %L)',
                current_setting('tests.company_a'), trigger_type, url, description)
$$;
select set_config('tests.company_a', :'company_a', true) as company_a_setting \gset

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
select pg_temp.violates_check(pg_temp.insert_sql('ftp://hooks.example/serial'), 'webhooks_url_scheme',
  'ftp:// is rejected (webhooks_url_scheme)');
select pg_temp.violates_check(pg_temp.insert_sql('hooks.example/serial'), 'webhooks_url_scheme',
  'a URL without a scheme is rejected (webhooks_url_scheme)');
select pg_temp.violates_check(pg_temp.insert_sql('/hooks/serial'), 'webhooks_url_scheme',
  'a relative URL is rejected (webhooks_url_scheme)');
select pg_temp.violates_check(pg_temp.insert_sql('javascript:alert(1)'), 'webhooks_url_scheme',
  'a javascript: URL is rejected (webhooks_url_scheme)');

-- URL: credentials, fragment, length ----------------------------------------------------------
select pg_temp.violates_check(pg_temp.insert_sql('https://user:pw@hooks.example/serial'), 'webhooks_url_no_credentials',
  'user:password@ is rejected (webhooks_url_no_credentials)');
select pg_temp.violates_check(pg_temp.insert_sql('https://user@hooks.example/serial'), 'webhooks_url_no_credentials',
  'a bare user@ is rejected (webhooks_url_no_credentials)');
select pg_temp.violates_check(pg_temp.insert_sql('https://hooks.example/serial#frag'), 'webhooks_url_no_fragment',
  'a #fragment is rejected (webhooks_url_no_fragment)');
select pg_temp.violates_check(
  pg_temp.insert_sql('https://hooks.example/' || repeat('a', 2049 - length('https://hooks.example/'))), 'webhooks_url_length',
  'a 2049-character URL is rejected (webhooks_url_length)');

-- URL: shape -----------------------------------------------------------------------------------
select pg_temp.violates_check(pg_temp.insert_sql('https://hooks.example/a b'), 'webhooks_url_wellformed',
  'a space in the path is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(pg_temp.insert_sql(E'https://hooks.example/a\tb'), 'webhooks_url_wellformed',
  'a tab in the path is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(pg_temp.insert_sql('https://hooks.example/serial '), 'webhooks_url_wellformed',
  'trailing whitespace is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(pg_temp.insert_sql('https:///x'), 'webhooks_url_wellformed',
  'an empty host is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(pg_temp.insert_sql('https:// hooks.example/'), 'webhooks_url_wellformed',
  'a space before the host is rejected (webhooks_url_wellformed)');
select pg_temp.violates_check(pg_temp.insert_sql('https://-hooks.example/'), 'webhooks_url_wellformed',
  'a host starting with a hyphen is rejected (webhooks_url_wellformed)');

-- Other columns ----------------------------------------------------------------------------------
select throws_ok(pg_temp.insert_sql('https://hooks.example/other', 'PROCESS_ARCHIVED'), '23503',
  'insert or update on table "webhooks" violates foreign key constraint "webhooks_trigger_type_fkey"',
  'an unknown trigger type is rejected (webhooks_trigger_type_fkey)');
select throws_ok(pg_temp.insert_sql('https://hooks.example/serial', 'PROCESS_CREATED'), '23505',
  'duplicate key value violates unique constraint "webhooks_company_trigger_url_key"',
  'the same (company, trigger type, url) twice is rejected (webhooks_company_trigger_url_key)');
select throws_ok(pg_temp.insert_sql('https://hooks.example/other', null), '23502',
  'null value in column "trigger_type" of relation "webhooks" violates not-null constraint',
  'a null trigger type is rejected');
select pg_temp.violates_check(
  pg_temp.insert_sql('https://hooks.example/other', 'PROCESS_REVISED', repeat('d', 501)), 'webhooks_description_length',
  'a 501-character description is rejected (webhooks_description_length)');
select pg_temp.violates_check(
  format($$update public.webhooks set url = 'ftp://hooks.example/serial' where id = %L$$, :'existing'), 'webhooks_url_scheme',
  'a bad URL is rejected on update too');
select throws_ok(
  format($$update public.webhooks set trigger_type = 'NOPE' where id = %L$$, :'existing'),
  '23503', 'insert or update on table "webhooks" violates foreign key constraint "webhooks_trigger_type_fkey"',
  'an unknown trigger type is rejected on update too');

-- Good input passes ---------------------------------------------------------------------------------
select lives_ok(pg_temp.insert_sql('https://hooks.example:8443/serial'), 'https with a port is accepted');
select lives_ok(pg_temp.insert_sql('https://hooks.example/a/b/c'), 'https with a path is accepted');
select lives_ok(pg_temp.insert_sql('https://hooks.example/in?source=serial&v=2'), 'https with a query is accepted');
select lives_ok(pg_temp.insert_sql('https://hooks.example?source=serial'), 'a query straight after the host is accepted');
select lives_ok(pg_temp.insert_sql('https://[2001:db8::1]:8443/serial'), 'an IPv6 literal with a port is accepted');
select lives_ok(pg_temp.insert_sql('https://192.0.2.10/serial'), 'an IPv4 literal is accepted');
select lives_ok(pg_temp.insert_sql('https://hooks.example'), 'a bare host is accepted');
select lives_ok(pg_temp.insert_sql('https://hooks.example/' || repeat('a', 2048 - length('https://hooks.example/'))),
  'a URL of exactly 2048 characters is accepted');
select lives_ok(pg_temp.insert_sql('https://hooks.example/serial', 'PROCESS_REVISED'),
  'the same URL for another trigger type is accepted');
select lives_ok(pg_temp.insert_sql('https://hooks.example/described', 'PROCESS_REVISED', repeat('d', 500)),
  'a 500-character description is accepted');

select tests.clear_authentication();
select is(
  (select count(*)::int from public.webhooks),
  11,
  'the rejected inputs wrote nothing: the existing webhook plus the ten accepted ones'
);
select is(
  (select url from public.webhooks where id = :'existing'),
  'https://hooks.example/serial',
  'the rejected updates left the existing webhook as it was'
);

-- Needs a caller past RLS, who would otherwise get the RLS error first --------------------------------
select throws_ok(
  $$insert into public.webhooks (company_id, trigger_type, url) values ('00000000-0000-0000-0000-000000000000', 'PROCESS_CREATED', 'https://hooks.example/x')$$,
  '23503', 'insert or update on table "webhooks" violates foreign key constraint "webhooks_company_id_fkey"',
  'a company that does not exist is rejected (webhooks_company_id_fkey)');
select throws_ok(
  $$insert into public.webhooks (company_id, trigger_type, url) values (null, 'PROCESS_CREATED', 'https://hooks.example/x')$$,
  '23502', 'null value in column "company_id" of relation "webhooks" violates not-null constraint',
  'a null company is rejected');
select throws_ok(pg_temp.insert_sql(null), '23502',
  'null value in column "url" of relation "webhooks" violates not-null constraint',
  'a null url is rejected');

-- Plain http: a deployment setting, read by the guard_row trigger --------------------------------------
update private.webhook_settings set allow_plain_http = false;
select throws_ok(pg_temp.insert_sql('http://hooks.example/plain'), '23514',
  'webhook url must use https (webhooks_url_https_required): http://hooks.example/plain',
  'plain http:// is rejected where allow_plain_http is false');
select is(tests.error_constraint(pg_temp.insert_sql('http://hooks.example/plain')), 'webhooks_url_https_required',
  'the error names the constraint webhooks_url_https_required');
select throws_ok(pg_temp.insert_sql('HTTP://HOOKS.EXAMPLE/plain'), '23514',
  'webhook url must use https (webhooks_url_https_required): HTTP://HOOKS.EXAMPLE/plain',
  'an upper-case HTTP:// is rejected too');
select throws_ok(
  format($$update public.webhooks set url = 'http://hooks.example/serial' where id = %L$$, :'existing'),
  '23514', 'webhook url must use https (webhooks_url_https_required): http://hooks.example/serial',
  'changing an https URL to plain http is rejected too');

update private.webhook_settings set allow_plain_http = true;
select lives_ok(pg_temp.insert_sql('http://hooks.example/plain'), 'plain http:// is accepted where allow_plain_http is true');
select lives_ok(pg_temp.insert_sql('http://127.0.0.1:54399/receiver'), 'a local http receiver with a port is accepted');

-- Bookkeeping: updated_at and the disable fields --------------------------------------------------
insert into public.webhooks (company_id, trigger_type, url, created_at, updated_at, failing_since)
values (:'company_a', 'PROCESS_DELETED', 'https://hooks.example/bookkeeping', '2000-01-01', '2000-01-01', '2000-01-03')
returning id as bookkeeping \gset

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
  format($$select is_active, disabled_at, disabled_reason, failing_since from public.webhooks where id = %L$$, :'bookkeeping'),
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

-- The deployment's settings row can be changed, never deleted (20261202090200): without it,
-- the checks that read it failed open (plain http:// urls and blocked ports accepted).
begin;
select plan(6);

select throws_ok($$delete from private.webhook_settings$$, '55000',
  'private.webhook_settings holds the deployment''s settings: its one row cannot be deleted',
  'DELETE is refused, saying why');
select throws_ok($$truncate private.webhook_settings$$, '55000',
  'private.webhook_settings holds the deployment''s settings: its one row cannot be deleted',
  'so is TRUNCATE');
select is((select count(*)::integer from private.webhook_settings), 1, 'the row is still there');
select lives_ok($$update private.webhook_settings set cancel_batch_size = 100$$, 'an UPDATE still changes a setting');

-- What the row keeps closed: with allow_plain_http false, a plain http url is refused.
update private.webhook_settings set allow_plain_http = false, hosted = true;
select tests.create_company('Settings Inc') as company \gset
select throws_ok(format($$select tests.create_webhook(%L, 'PROCESS_CREATED', 'http://plain.example.com/hook')$$, :'company'),
  '23514', null, 'a plain http url is refused');
select throws_ok(format($$select tests.create_webhook(%L, 'PROCESS_CREATED', 'https://smtp.example.com:25/hook')$$, :'company'),
  '23514', null, 'port 25 is refused on hosted Supabase');

select * from finish();
rollback;

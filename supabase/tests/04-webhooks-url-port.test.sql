-- A port in a webhook url must be a real TCP port, 1 to 65535.
begin;
select plan(4);

select tests.create_company('Company A') as company_a \gset
create function pg_temp.insert_url(url text) returns text language sql as $$
  select format('insert into public.webhooks (company_id, trigger_type, url) values (%L, ''PROCESS_CREATED'', %L)',
                current_setting('tests.company'), url)
$$;
select set_config('tests.company', :'company_a', true);

select throws_ok(pg_temp.insert_url('https://hooks.example:99999/x'), '23514',
  'new row for relation "webhooks" violates check constraint "webhooks_url_wellformed"', 'port 99999 is refused');
select throws_ok(pg_temp.insert_url('https://hooks.example:0/x'), '23514',
  'new row for relation "webhooks" violates check constraint "webhooks_url_wellformed"', 'port 0 is refused');
select throws_ok(pg_temp.insert_url('https://hooks.example:65536/x'), '23514',
  'new row for relation "webhooks" violates check constraint "webhooks_url_wellformed"', 'port 65536 is refused');
select lives_ok(pg_temp.insert_url('https://hooks.example:65535/x'), 'port 65535 is accepted');

select * from finish();
rollback;

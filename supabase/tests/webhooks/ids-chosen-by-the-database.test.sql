-- Clients never choose a row's id, so no answer depends on whether another company's row
-- has that id: an API insert that names an id is refused with 42501 whatever the id, and
-- every unique key API roles can write contains company_id (checked by RLS first) or
-- none of their columns.
begin;
select plan(10);

select * from tests.create_cast(with_webhooks => true) \gset
insert into public.processes (company_id, name) values (:'company_b', 'B assembly') returning id as process_b \gset

select is(
  array(
    select format('%s.%s', c.relname, i.relname)
      from pg_index x
      join pg_class c on c.oid = x.indrelid
      join pg_class i on i.oid = x.indexrelid
     where c.relnamespace = 'public'::regnamespace
       and x.indisunique
       and not exists (select 1 from unnest(x.indkey) k join pg_attribute a on a.attrelid = c.oid and a.attnum = k
                        where a.attname = 'company_id')
       and exists (select 1 from unnest(x.indkey) k join pg_attribute a on a.attrelid = c.oid and a.attnum = k
                    where has_column_privilege('authenticated', c.oid, a.attnum, 'INSERT')
                       or has_column_privilege('authenticated', c.oid, a.attnum, 'UPDATE')
                       or has_column_privilege('anon', c.oid, a.attnum, 'INSERT')
                       or has_column_privilege('anon', c.oid, a.attnum, 'UPDATE'))
     order by 1),
  '{}'::text[],
  'no unique key without company_id has a column API roles can write (a conflict there would reveal another tenant''s row)'
);

select tests.authenticate_as(:'admin_a');
select throws_ok(
  format($$insert into public.webhooks (id, company_id, trigger_type, url) values (%L, %L, 'PROCESS_REVISED', 'https://a.example/probe')$$,
         :'webhook_b', :'company_a'),
  '42501', 'permission denied for table webhooks', 'an insert with another company''s webhook id is refused');
select throws_ok(
  format($$insert into public.webhooks (id, company_id, trigger_type, url) values (gen_random_uuid(), %L, 'PROCESS_REVISED', 'https://a.example/probe')$$,
         :'company_a'),
  '42501', 'permission denied for table webhooks', 'an insert with an unused id gets the same answer');
select throws_ok(
  format($$insert into public.webhooks (id, company_id, trigger_type, url) values (%L, %L, 'PROCESS_REVISED', 'https://a.example/probe')
           on conflict (id) do nothing$$, :'webhook_b', :'company_a'),
  '42501', 'permission denied for table webhooks', 'on conflict (id) do nothing with another company''s id: the same answer');
select throws_ok(
  format($$insert into public.webhooks (id, company_id, trigger_type, url) values (%L, %L, 'PROCESS_REVISED', 'https://a.example/probe')$$,
         :'webhook_a1', :'company_a'),
  '42501', 'permission denied for table webhooks', 'and with one of its own ids: ids are never the client''s to choose');
select throws_ok(
  format($$insert into public.processes (id, company_id, name) values (%L, %L, 'Probe')$$, :'process_b', :'company_a'),
  '42501', 'permission denied for table processes', 'a process insert with another company''s process id is refused');
select throws_ok(
  format($$insert into public.processes (id, company_id, name) values (gen_random_uuid(), %L, 'Probe')$$, :'company_a'),
  '42501', 'permission denied for table processes', 'a process insert with an unused id gets the same answer');
-- A key with company_id: another company's values meet RLS before the unique check.
select throws_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_CREATED', 'https://b.example/created')$$, :'company_b'),
  '42501', 'new row violates row-level security policy for table "webhooks"',
  'a copy of another company''s (company_id, trigger_type, url) is refused by RLS, not by the unique key');

select lives_ok(
  format($$insert into public.webhooks (company_id, trigger_type, url) values (%L, 'PROCESS_REVISED', 'https://a.example/new')$$, :'company_a'),
  'without an id the insert works: the database picks it');
select tests.clear_authentication();
select is((select count(*)::integer from public.webhooks where url = 'https://a.example/probe'), 0, 'no refused insert left a row');

select * from finish();
rollback;

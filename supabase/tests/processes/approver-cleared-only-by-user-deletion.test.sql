-- While a process stays approved, who approved it is part of the record: nobody clears
-- approved_by_user_id by hand (not an ADMIN, not the approver, not service_role). Only
-- deleting that user clears it (ON DELETE SET NULL), leaving approved and approved_at.
begin;
select plan(9);

select tests.create_company('Company A') as company_a \gset
select tests.create_company('Company B') as company_b \gset
select tests.create_user('approver@a.test', :'company_a', 'ADMIN') as approver \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_user('second-approver@a.test', :'company_a', 'ADMIN') as second_approver \gset

select tests.authenticate_as(:'approver');
insert into public.processes (company_id, name) values (:'company_a', 'Assembly') returning id as process \gset
update public.processes set approved = true where id = :'process';
select tests.authenticate_as(:'second_approver');
insert into public.processes (company_id, name) values (:'company_a', 'Painting') returning id as painting \gset
update public.processes set approved = true where id = :'painting';
select tests.clear_authentication();
select approved_at as approved_at from public.processes where id = :'process' \gset

create function pg_temp.record(process uuid) returns text language sql as $$
  select format('%s by %s at %s', approved, approved_by_user_id, approved_at) from public.processes where id = process
$$;
select pg_temp.record(:'process') as approved_record \gset

select tests.authenticate_as(:'admin_a');
update public.processes set approved_by_user_id = null where id = :'process';
select is(pg_temp.record(:'process'), :'approved_record', 'another ADMIN cannot clear the approver');

select tests.authenticate_as(:'approver');
update public.processes set approved_by_user_id = null where id = :'process';
select is(pg_temp.record(:'process'), :'approved_record', 'the approver cannot clear themself');

select tests.authenticate_as_service_role();
update public.processes set approved_by_user_id = null where id = :'process';
select is(pg_temp.record(:'process'), :'approved_record', 'service_role cannot clear the approver either');

-- Still a user, though one this ADMIN's RLS no longer shows: the record stands.
select tests.clear_authentication();
update public.users set company_id = :'company_b' where supabase_uid = :'approver';
select tests.authenticate_as(:'admin_a');
select is((select count(*)::integer from public.users where supabase_uid = :'approver'), 0,
  'the approver moved to company B: hidden from company A''s ADMIN');
update public.processes set approved_by_user_id = null where id = :'process';
select is(pg_temp.record(:'process'), :'approved_record', 'an approver who moved company is still not cleared');

-- Deleting the approver (auth.users cascades to public.users) clears it; the rest stays.
select tests.clear_authentication();
delete from auth.users where id = :'approver';
select results_eq(
  format($$select approved, approved_by_user_id, approved_at from public.processes where id = %L$$, :'process'),
  format($$values (true, null::uuid, %L::timestamptz)$$, :'approved_at'),
  'deleting the approver clears approved_by_user_id (ON DELETE SET NULL), approved and approved_at stay'
);
delete from public.users where supabase_uid = :'second_approver';
select results_eq(
  format($$select approved, approved_by_user_id from public.processes where id = %L$$, :'painting'),
  $$values (true, null::uuid)$$,
  'deleting only the public.users row of the approver clears it as well'
);

-- Withdrawing the approval still clears the whole record.
select tests.authenticate_as(:'admin_a');
update public.processes set approved = false where id = :'painting';
select results_eq(
  format($$select approved, approved_by_user_id, approved_at from public.processes where id = %L$$, :'painting'),
  $$values (false, null::uuid, null::timestamptz)$$,
  'setting approved = false still clears the approver and the time'
);
select tests.clear_authentication();
select is((select array_agg(revision order by name) from public.processes where company_id = :'company_a'),
  array[1, 1]::bigint[], 'none of this made a new revision');

select * from finish();
rollback;

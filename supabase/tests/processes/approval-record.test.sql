-- Approval is a record of who approved and when: an API user approves as themself, at
-- the time of the update, whatever approver or time the client sends; the record stands
-- while the process stays approved; authorship cannot be handed to another user.
begin;
select plan(7);

select tests.create_company('Company A') as company_a \gset
select tests.create_company('Company B') as company_b \gset
select tests.create_user('admin@a.test', :'company_a', 'ADMIN') as admin_a \gset
select tests.create_user('admin2@a.test', :'company_a', 'ADMIN') as admin_a2 \gset
select tests.create_user('admin@b.test', :'company_b', 'ADMIN') as admin_b \gset

select tests.authenticate_as(:'admin_a');
insert into public.processes (company_id, name, created_by_user_id)
values (:'company_a', 'Assembly', :'admin_a')
returning id as process \gset
insert into public.processes (company_id, name, created_by_user_id)
values (:'company_a', 'Credited elsewhere', :'admin_b')
returning id as credited \gset
select is(
  (select created_by_user_id from public.processes where id = :'credited'), :'admin_a'::uuid,
  'an API user creates a process as themself, whatever author they send'
);

update public.processes
   set approved = true, approved_by_user_id = :'admin_b', approved_at = '2000-01-01'
 where id = :'process';
select results_eq(
  format($$select approved, approved_by_user_id, approved_at from public.processes where id = %L$$, :'process'),
  format($$values (true, %L::uuid, now())$$, :'admin_a'),
  'an ADMIN approving records themself and now, not the approver and time they sent'
);

select tests.authenticate_as(:'admin_a2');
update public.processes set approved_by_user_id = :'admin_a2', approved_at = '2001-01-01' where id = :'process';
select results_eq(
  format($$select approved_by_user_id, approved_at from public.processes where id = %L$$, :'process'),
  format($$values (%L::uuid, now())$$, :'admin_a'),
  'while approved, another ADMIN cannot rewrite the approver or the time'
);

update public.processes set approved = false where id = :'process';
select results_eq(
  format($$select approved, approved_by_user_id, approved_at from public.processes where id = %L$$, :'process'),
  $$values (false, null::uuid, null::timestamptz)$$,
  'withdrawing the approval clears the approver and the time'
);

select tests.authenticate_as_service_role();
update public.processes set created_by_user_id = :'admin_b' where id = :'process';
select is(
  (select created_by_user_id from public.processes where id = :'process'), :'admin_a'::uuid,
  'authorship cannot be handed to another user, not even by service_role'
);

select tests.clear_authentication();
delete from auth.users where id = :'admin_a';
select is(
  (select created_by_user_id from public.processes where id = :'process'), null,
  'deleting the author clears created_by_user_id (ON DELETE SET NULL still works)'
);
select is(
  (select revision from public.processes where id = :'process'), 1::bigint,
  'none of this was a new revision'
);

select * from finish();
rollback;

-- Regression: `alter default privileges in schema private revoke execute on functions
-- from public` is a no-op (per-schema defaults can only add to the global ones), so every
-- private function keeps PUBLIC's EXECUTE, and authenticated has USAGE on private.
begin;
select plan(2);

select is(
  array(select p.proname::text
          from pg_proc p
         where p.pronamespace = 'private'::regnamespace
           and has_function_privilege('authenticated', p.oid, 'EXECUTE')
           and p.proname not in ('member_company_id', 'admin_company_id', 'is_company_admin', 'can_manage_company',
                                 -- called with the caller's rights by update_process_revision
                                 'process_changed_fields', 'process_non_definition_columns')
         order by 1),
  '{}'::text[],
  'authenticated can execute only the authorization helpers (and what invoker triggers call) in private'
);

select tests.create_company('Company A') as company_a \gset
select tests.create_company('Company B') as company_b \gset
select tests.create_user('member@b.test', :'company_b', 'MEMBER') as member_b \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a.example/created') as webhook_a \gset
insert into public.processes (company_id, name) values (:'company_a', 'A assembly');

select tests.authenticate_as(:'member_b');
select throws_ok(
  $$select secrets from private.claim_due_deliveries('not-a-dispatcher', 50, 60)$$,
  '42501', 'permission denied for function claim_due_deliveries',
  'a MEMBER of B cannot claim A''s deliveries (and read A''s signing secrets)'
);

select tests.clear_authentication();
select * from finish();
rollback;

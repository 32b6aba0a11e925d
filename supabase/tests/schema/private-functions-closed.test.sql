-- The machinery in `private` is closed to API users. authenticated has USAGE on the schema
-- (policies call the authorization helpers), so what keeps the rest closed is EXECUTE:
-- PUBLIC, anon and authenticated may execute no private function but the helpers the
-- policies call, what invoker triggers call, and what the health view computes:
-- endpoint_concurrency (a number bounded by two settings) and
-- endpoint_held_back_by_own_limits and endpoint_waits_for_company_share (null for anyone who
-- may not manage the endpoint). The catalog checks run over every private
-- function, so one added later and left open (Postgres opens every new function to PUBLIC;
-- each migration revokes that) fails here; the calls show what an open one would expose.
begin;
select plan(10);

-- Every private function, with who holds EXECUTE on it (PUBLIC is grantee 0).
create function pg_temp.private_functions_executable_by(grantee oid)
returns text[]
language sql
as $$
  select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}')
    from pg_proc p
   where p.pronamespace = 'private'::regnamespace
     and exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  where a.grantee = private_functions_executable_by.grantee and a.privilege_type = 'EXECUTE')
$$;

select is(pg_temp.private_functions_executable_by(0), '{}'::text[],
  'PUBLIC can execute no function in private (lists the ones it can)');
select is(pg_temp.private_functions_executable_by('anon'::regrole), '{}'::text[],
  'anon can execute no function in private (lists the ones it can)');
select is(
  array(select p.proname::text
          from pg_proc p
         where p.pronamespace = 'private'::regnamespace
           and has_function_privilege('authenticated', p.oid, 'EXECUTE')
           and p.proname not in ('member_company_id', 'admin_company_id', 'is_company_admin', 'can_manage_company',
                                 -- called with the caller's rights by update_process_revision
                                 'process_changed_fields', 'process_non_definition_columns', 'user_exists',
                                 -- computed by public.webhook_endpoint_health (security invoker)
                                 'endpoint_concurrency',
                                 -- also: answers only who may manage the endpoint's company
                                 -- (supabase/tests/scheduling/endpoint-health-view.test.sql)
                                 'endpoint_held_back_by_own_limits', 'endpoint_waits_for_company_share')
         order by 1),
  '{}'::text[],
  'authenticated can execute only the authorization helpers (and what invoker triggers call) in private'
);

select tests.create_company('Acme') as company_a \gset
select tests.create_company('Globex') as company_b \gset
select tests.create_user('member@globex.test', :'company_b', 'MEMBER') as member_b \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://a.example.com/hook') as hook_a \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{}') as event_a \gset

select tests.authenticate_as(:'member_b');
select throws_ok(format($$select private.enqueue_webhook_event(%L, 'PROCESS_REVISED', '{"forged": true}')$$, :'company_a'),
  '42501', 'permission denied for function enqueue_webhook_event', 'authenticated cannot enqueue');
select throws_ok($$select * from private.claim_due_deliveries('attacker', 50, 60)$$,
  '42501', 'permission denied for function claim_due_deliveries',
  'authenticated cannot claim (it would hand a member of Globex Acme''s payloads and signing secrets)');
select throws_ok($$select private.record_delivery_results('attacker', '[]', interval '5 days')$$,
  '42501', 'permission denied for function record_delivery_results', 'authenticated cannot record results');
select throws_ok($$select private.release_deliveries('attacker', '{}')$$,
  '42501', 'permission denied for function release_deliveries', 'authenticated cannot release');
select throws_ok(format($$select private.cancel_pending_deliveries(%L, 'x')$$, :'hook_a'),
  '42501', 'permission denied for function cancel_pending_deliveries', 'authenticated cannot cancel');
select throws_ok($$select private.prune_webhook_history('1 hour')$$,
  '42501', 'permission denied for function prune_webhook_history', 'authenticated cannot prune');
select throws_ok(format($$select private.managed_webhook(%L)$$, :'hook_a'),
  '42501', 'permission denied for function managed_webhook', 'authenticated cannot call internal helpers');
select tests.clear_authentication();
select * from finish();
rollback;

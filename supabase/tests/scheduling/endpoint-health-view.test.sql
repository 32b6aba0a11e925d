-- public.webhook_endpoint_health: each endpoint's health as its ADMINs see it (state
-- healthy, failing, circuit_open or disabled; the failing streak, the circuit, the last
-- attempt; the requests it may have in flight now, `concurrency`; whether its own limits
-- hold deliveries back now, `held_back_by_own_limits`; whether it waits for the company's
-- share of requests, `waiting_for_company_share`). A security-invoker view: an active ADMIN sees their own company's endpoints
-- and nothing else; a MEMBER, an inactive ADMIN, an ADMIN of an inactive company and a
-- user without a profile see nothing; anon may not read it at all. Nobody writes it; the
-- scheduling columns behind it (ready_at) are not readable by users.
begin;
select plan(27);

select * from tests.create_cast(with_webhooks => true) \gset
select tests.create_webhook(:'company_a', 'PROCESS_DELETED', 'https://a.example/deleted') as webhook_a3 \gset
select tests.create_webhook(:'company_a', 'WEBHOOK_TEST', 'https://a.example/test') as webhook_a4 \gset

-- a1 healthy; a2 failing for an hour; a3 circuit open; a4 disabled (with a failing streak).
update private.webhook_endpoints
   set consecutive_failures = 2, failing_since = now() - interval '1 hour', last_status = 500, last_error = 'HTTP 500',
       last_attempt_at = now()
 where webhook_id = :'webhook_a2';
update private.webhook_endpoints
   set consecutive_failures = 12, failing_since = now() - interval '2 hours', circuit_opened_at = now() - interval '5 minutes',
       probe_interval_seconds = 40, next_probe_at = now() + interval '40 seconds', last_error = 'timed out after 15000 ms'
 where webhook_id = :'webhook_a3';
update public.webhooks set is_active = false where id = :'webhook_a4';
update private.webhook_endpoints set consecutive_failures = 3, failing_since = now() - interval '3 hours'
 where webhook_id = :'webhook_a4';

select tests.authenticate_as(:'admin_a');
select results_eq(
  $$select webhook_id, company_id, state, consecutive_failures, failing_since, circuit_opened_at, next_probe_at, last_status, last_error
      from public.webhook_endpoint_health order by state$$,
  format($$values (%L::uuid, %L::uuid, 'circuit_open'::text, 12, now() - interval '2 hours', now() - interval '5 minutes', now() + interval '40 seconds', null::integer, 'timed out after 15000 ms'::text),
                  (%L::uuid, %L::uuid, 'disabled', 3, now() - interval '3 hours', null, null, null, null),
                  (%L::uuid, %L::uuid, 'failing', 2, now() - interval '1 hour', null, null, 500, 'HTTP 500'),
                  (%L::uuid, %L::uuid, 'healthy', 0, null, null, null, null, null)$$,
         :'webhook_a3', :'company_a', :'webhook_a4', :'company_a', :'webhook_a2', :'company_a', :'webhook_a1', :'company_a'),
  'an ADMIN sees each endpoint of their company with its state: circuit_open, disabled, failing, healthy');
select is((select count(*)::integer from public.webhook_endpoint_health where company_id <> :'company_a'), 0,
  'and no endpoint of another company');
select tests.clear_authentication();
update private.webhook_endpoints set concurrency_limit = 37 where webhook_id = :'webhook_a1';
update private.webhook_endpoints set concurrency_limit = 400 where webhook_id = :'webhook_a2';
select tests.authenticate_as(:'admin_a');
select results_eq($$select state, concurrency from public.webhook_endpoint_health order by state$$,
  $$values ('circuit_open'::text, 10), ('disabled', 10), ('failing', 50), ('healthy', 37)$$,
  'and how many requests each may have in flight now: the start (10) until it earned more, never past the cap (50)');
select throws_ok($$select * from private.webhook_settings$$,
  '42501', 'permission denied for table webhook_settings', 'without reading the settings behind that number');
select throws_ok($$update public.webhook_endpoint_health set consecutive_failures = 0$$,
  '55000', 'cannot update view "webhook_endpoint_health"', 'an ADMIN cannot write the health view');
select throws_ok($$delete from public.webhook_endpoint_health$$,
  '55000', 'cannot delete from view "webhook_endpoint_health"', 'nor delete from it');
select throws_ok($$update private.webhook_endpoints set consecutive_failures = 0$$,
  '42501', 'permission denied for table webhook_endpoints', 'nor write the table behind it');
select throws_ok($$select ready_at from private.webhook_endpoints$$,
  '42501', 'permission denied for table webhook_endpoints', 'nor read the scheduling state (ready_at)');
select tests.clear_authentication();

select tests.authenticate_as(:'admin_b');
select results_eq($$select webhook_id, state from public.webhook_endpoint_health$$,
  format($$values (%L::uuid, 'healthy'::text)$$, :'webhook_b'),
  'the ADMIN of company B sees B''s endpoint only');
select is((select count(*)::integer from public.webhook_endpoint_health where webhook_id = :'webhook_a3'), 0,
  'and not A''s, even by id');
select tests.clear_authentication();

select tests.authenticate_as(:'member_a');
select is((select count(*)::integer from public.webhook_endpoint_health), 0, 'a MEMBER of A sees nothing');
select tests.clear_authentication();
select tests.authenticate_as(:'operator_a');
select is((select count(*)::integer from public.webhook_endpoint_health), 0, 'an OPERATOR of A sees nothing');
select tests.clear_authentication();
select tests.authenticate_as(:'inactive_admin_a');
select is((select count(*)::integer from public.webhook_endpoint_health), 0, 'an inactive ADMIN of A sees nothing');
select tests.clear_authentication();
select tests.authenticate_as(:'admin_c');
select is((select count(*)::integer from public.webhook_endpoint_health), 0, 'an ADMIN of an inactive company sees nothing');
select tests.clear_authentication();
select tests.authenticate_as(:'no_profile');
select is((select count(*)::integer from public.webhook_endpoint_health), 0, 'a user without a profile sees nothing');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok($$select * from public.webhook_endpoint_health$$,
  '42501', 'permission denied for view webhook_endpoint_health', 'anon may not read it');
select tests.clear_authentication();

-- Held back by its own limits: a1 limited to 1 a second, its bucket empty, two deliveries due.
update public.webhooks set max_requests_per_second = 1 where id = :'webhook_a1';
select count(private.insert_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n), array[:'webhook_a1'::uuid]))
  from generate_series(1, 2) n \gset
update private.webhook_endpoints set rate_tokens = 0, rate_updated_at = now() where webhook_id = :'webhook_a1';
select tests.authenticate_as(:'admin_a');
select results_eq($$select webhook_id, held_back_by_own_limits from public.webhook_endpoint_health order by webhook_id$$,
  format($$select id, id = %L from public.webhooks where company_id = %L order by id$$, :'webhook_a1', :'company_a'),
  'an ADMIN sees that their own rate holds a1''s deliveries back now, and no other endpoint''s');
select is(private.endpoint_held_back_by_own_limits(:'webhook_a1'), true,
  'the function behind it says so for them too');
select tests.clear_authentication();
select tests.authenticate_as(:'admin_b');
select is((select count(*)::integer from public.webhook_endpoint_health where webhook_id = :'webhook_a1'), 0,
  'another company''s ADMIN sees no row of it');
select is(private.endpoint_held_back_by_own_limits(:'webhook_a1'), null,
  'nor learns it by calling the function behind it with a1''s id: null, as for an id that does not exist');
select is(private.endpoint_held_back_by_own_limits(gen_random_uuid()), null, 'such as this one');
select tests.clear_authentication();
update public.webhooks set max_requests_per_second = null where id = :'webhook_a1';
select tests.authenticate_as(:'admin_a');
select is((select held_back_by_own_limits from public.webhook_endpoint_health where webhook_id = :'webhook_a1'), false,
  'without the rate, nothing holds them back');
select tests.clear_authentication();

-- Waiting for the company's share (20261204090100): with a share of 1, a claim gives it to
-- one of a1 and a2, which both have deliveries due, and turns the other away.
update private.webhook_settings set company_concurrency = 1;
select private.insert_webhook_event(:'company_a', 'PROCESS_CREATED', '{}', array[:'webhook_a2'::uuid]) as event_a2 \gset
select count(*) from private.claim_due_deliveries('worker-1', 50, 60) \gset
select tests.authenticate_as(:'admin_a');
select results_eq(format($$select webhook_id, waiting_for_company_share from public.webhook_endpoint_health
                            where webhook_id in (%L, %L) order by webhook_id$$, :'webhook_a1', :'webhook_a2'),
  format($$select w.id, not exists (select 1 from public.webhook_deliveries d where d.webhook_id = w.id and d.lease_owner is not null)
             from public.webhooks w where w.id in (%L, %L) order by w.id$$, :'webhook_a1', :'webhook_a2'),
  'an ADMIN sees which endpoint waits for the company''s share: the one the claim turned away, not the one it served');
select tests.clear_authentication();
select tests.authenticate_as(:'admin_b');
select is(private.endpoint_waits_for_company_share(:'webhook_a1'), null,
  'another company''s ADMIN learns nothing of it by calling the function behind it');
select tests.clear_authentication();
update private.webhook_settings set company_concurrency = 200;
update public.webhooks set is_active = false where id in (:'webhook_a1', :'webhook_a2');
select tests.authenticate_as(:'admin_a');
select is((select count(*)::integer from public.webhook_endpoint_health
            where webhook_id in (:'webhook_a1', :'webhook_a2') and waiting_for_company_share), 0,
  'disabled, nothing waits (their deliveries are cancelled)');
select tests.clear_authentication();
update public.webhooks set is_active = true where id in (:'webhook_a1', :'webhook_a2');

-- Re-enabling an endpoint shows it healthy again (its health starts afresh).
update public.webhooks set is_active = true where id = :'webhook_a4';
select tests.authenticate_as(:'admin_a');
select results_eq(format($$select state, consecutive_failures, failing_since from public.webhook_endpoint_health where webhook_id = %L$$, :'webhook_a4'),
  $$values ('healthy'::text, 0, null::timestamptz)$$,
  'an endpoint re-enabled is healthy again');
select tests.clear_authentication();

-- Deleting a webhook removes its health row with it.
delete from public.webhooks where id = :'webhook_a3';
select is((select count(*)::integer from public.webhook_endpoint_health where webhook_id = :'webhook_a3'), 0,
  'a deleted endpoint has no health row');

select * from finish();
rollback;

-- A disable or a delete cancels at most cancel_batch_size pending deliveries in its own
-- statement; claims cancel the rest, a chunk each, without sending any of them, and an
-- endpoint enabled again sends nothing until its old backlog is cancelled
-- (migration 20261130140000). cancel_batch_size is 3 here; the default is 200.
begin;
select plan(32);

update private.webhook_settings set cancel_batch_size = 3;

select tests.create_company('Big backlog') as company_a \gset
select tests.create_company('Healthy neighbour') as company_b \gset
select tests.create_company('Enabled again') as company_c \gset
select tests.create_company('Deleted endpoint') as company_d \gset
select tests.create_company('Small backlog') as company_e \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://big.example.com/hook') as big \gset
select tests.create_webhook(:'company_b', 'PROCESS_CREATED', 'https://healthy.example.com/hook') as healthy \gset
select tests.create_webhook(:'company_c', 'PROCESS_CREATED', 'https://back.example.com/hook') as back \gset
select tests.create_webhook(:'company_d', 'PROCESS_CREATED', 'https://gone.example.com/hook') as gone \gset
select tests.create_webhook(:'company_e', 'PROCESS_CREATED', 'https://small.example.com/hook') as small \gset

-- Deliveries of one endpoint by state, and every delivery any claim returned.
create function pg_temp.states(hook uuid)
returns table (pending integer, cancelled integer)
language sql as $$
  select count(*) filter (where d.state = 'pending')::integer,
         count(*) filter (where d.state = 'cancelled')::integer
    from public.webhook_deliveries d
   where d.webhook_id = hook
$$;
create temporary table claimed (call text, delivery_id uuid, event_id uuid, webhook_id uuid, company_id uuid,
                                url text, payload jsonb, attempt_number integer, secrets text[],
                                event_created_at timestamptz);

select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)) from generate_series(1, 8) n;

-- Disable: a chunk now, the rest left to the claims ------------------------------------------
-- (Its signals consumed already, as by a claim that found it at its cap: otherwise the next
-- claim would also look at the disabled endpoint itself and cancel a chunk there too.)
delete from private.webhook_endpoint_signals where webhook_id = :'big';
-- One of them as a write that started after the disable did and committed before its cancel
-- ran (it read the endpoint active): created later than the disable's start.
update public.webhook_deliveries set created_at = now() + interval '1 second'
 where id = (select id from public.webhook_deliveries where webhook_id = :'big' order by id limit 1);
update public.webhooks set is_active = false where id = :'big';
select results_eq(format('select * from pg_temp.states(%L)', :'big'), $$values (5, 3)$$,
  'disabling an endpoint with 8 pending deliveries cancels 3 (cancel_batch_size) in its statement');
select results_eq(format($$select reason, through from private.webhook_cancellations where webhook_id = %L$$, :'big'),
  $$values ('endpoint disabled: disabled by an admin'::text, 'infinity'::timestamptz)$$,
  'and leaves the rest to the claims: the reason, and every pending delivery, whenever created');
select is(private.next_dispatch_at(), now(), 'which is work for a dispatcher now (nothing else is)');
-- Meanwhile another tenant's events come in.
select private.enqueue_webhook_event(:'company_b', 'PROCESS_CREATED', jsonb_build_object('n', n)) from generate_series(1, 2) n;

insert into claimed select 'c1', * from private.claim_due_deliveries('worker-1', 10, 60);
select results_eq(format('select * from pg_temp.states(%L)', :'big'), $$values (2, 6)$$,
  'a claim cancels one chunk more');
select results_eq($$select webhook_id from claimed where call = 'c1'$$,
  format($$values (%L::uuid), (%L::uuid)$$, :'healthy', :'healthy'),
  'and claims the other tenant''s deliveries as usual, none of the disabled endpoint''s');
insert into claimed select 'c2', * from private.claim_due_deliveries('worker-1', 10, 60);
select results_eq(format('select * from pg_temp.states(%L)', :'big'), $$values (0, 8)$$,
  'the next claim cancels the last ones');
select is((select count(*)::integer from private.webhook_cancellations where webhook_id = :'big'), 0,
  'and, nothing pending being left under it, ends the cancellation');
select is((select count(*)::integer from public.webhook_deliveries
            where webhook_id = :'big' and last_error = 'endpoint disabled: disabled by an admin'), 8,
  'every one of the 8 says why it was cancelled');
select is((select count(*)::integer from claimed where webhook_id = :'big'), 0, 'none of them was ever claimed');

-- A small backlog is cancelled at once, as before ------------------------------------------
select private.enqueue_webhook_event(:'company_e', 'PROCESS_CREATED', jsonb_build_object('n', n)) from generate_series(1, 2) n;
-- One from a write that started after the disable did (created later), committed before
-- its cancel ran: the disable clears the endpoint's schedule, so it must be cancelled here.
update public.webhook_deliveries set created_at = now() + interval '1 second'
 where id = (select id from public.webhook_deliveries where webhook_id = :'small' order by id limit 1);
update public.webhooks set is_active = false where id = :'small';
select results_eq(format('select * from pg_temp.states(%L)', :'small'), $$values (0, 2)$$,
  'fewer pending deliveries than a chunk: all cancelled by the disable itself, whenever created');
select is((select count(*)::integer from private.webhook_cancellations where webhook_id = :'small'), 0,
  'and nothing is left for the claims');

-- Enabled again before the claims have finished -------------------------------------------
select private.enqueue_webhook_event(:'company_c', 'PROCESS_CREATED', jsonb_build_object('n', n)) from generate_series(1, 8) n;
select array_agg(id) as old_deliveries from public.webhook_deliveries where webhook_id = :'back' \gset
update public.webhooks set is_active = false where id = :'back';
select tests.time_passes('1 second');
update public.webhooks set is_active = true where id = :'back';
select results_eq(format($$select through from private.webhook_cancellations where webhook_id = %L$$, :'back'),
  $$values (now())$$,
  'enabled again a second later: the cancellation now covers what was created before the re-enabling transaction');
-- Two new events, in the re-enabling transaction itself (as a replay right after it would be).
select private.enqueue_webhook_event(:'company_c', 'PROCESS_CREATED', jsonb_build_object('n', n)) from generate_series(9, 10) n;
select results_eq(format('select * from pg_temp.states(%L)', :'back'), $$values (7, 3)$$,
  'disabled with 8, enabled again, 2 new events: 5 old and 2 new pending');

insert into claimed select 'c3', * from private.claim_due_deliveries('worker-1', 10, 60);
select is((select count(*)::integer from claimed where call = 'c3' and webhook_id = :'back'), 0,
  'while the old backlog is being cancelled the endpoint sends nothing, not even the new events');
select results_eq(format('select * from pg_temp.states(%L)', :'back'), $$values (4, 6)$$,
  'the claim cancelled one more chunk of the old ones, and only old ones');
insert into claimed select 'c4', * from private.claim_due_deliveries('worker-1', 10, 60);
insert into claimed select 'c5', * from private.claim_due_deliveries('worker-1', 10, 60);
select is((select count(*)::integer from public.webhook_deliveries
            where id = any (:'old_deliveries'::uuid[]) and state = 'cancelled'), 8,
  'every delivery from before the disable ends cancelled');
select is((select count(*)::integer from claimed where delivery_id = any (:'old_deliveries'::uuid[])), 0,
  'none of them was sent');
select results_eq(
  format($$select count(*)::integer from claimed c join public.webhook_events e on e.id = c.event_id
            where c.webhook_id = %L and (e.payload -> 'data' ->> 'n')::integer in (9, 10)$$, :'back'),
  $$values (2)$$,
  'the two new events are claimed once the old backlog is gone');
select is((select count(*)::integer from private.webhook_cancellations), 0, 'no cancellation is left');

-- Enabled again: the schedule the disable cleared comes back ---------------------------------
select tests.create_company('Late write') as company_f \gset
select tests.create_webhook(:'company_f', 'PROCESS_CREATED', 'https://late.example.com/hook') as late \gset
select private.enqueue_webhook_event(:'company_f', 'PROCESS_CREATED', jsonb_build_object('n', n)) from generate_series(1, 5) n;
update public.webhooks set is_active = false where id = :'late';
-- A write that read the endpoint active commits between the disable and the re-enable, and
-- a claim consumes its signal (the endpoint was disabled: it looked and moved on). Its
-- delivery is newer than the re-enabling transaction's start.
select tests.time_passes('1 second');
insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, created_at)
select :'company_f', e.id, :'late', now(), now() + interval '1 second'
  from public.webhook_events e where e.company_id = :'company_f' limit 1
returning id as late_delivery \gset
delete from private.webhook_endpoint_signals where webhook_id = :'late';
update public.webhooks set is_active = true where id = :'late';
select is((select ready_at from private.webhook_endpoints where webhook_id = :'late'), null,
  'enabled again while its backlog is being cancelled: off the schedule, the cancellation comes first (20261201090100)');
insert into claimed select 'c8', * from private.claim_due_deliveries('worker-1', 10, 60);
select isnt((select ready_at from private.webhook_endpoints where webhook_id = :'late'), null,
  'the claim that ends the cancellation schedules the endpoint again (the disable had cleared it)');
insert into claimed select 'c9', * from private.claim_due_deliveries('worker-1', 10, 60);
select is((select count(*)::integer from claimed where delivery_id = :'late_delivery'), 1,
  'so the late write''s delivery is sent once the old backlog is cancelled');

-- Delete: the cancellation outlives the endpoint --------------------------------------------
select private.enqueue_webhook_event(:'company_d', 'PROCESS_CREATED', jsonb_build_object('n', n)) from generate_series(1, 8) n;
-- One of them as a write that started after the delete did and fanned out while the delete
-- waited for an earlier write (shared row locks do not queue behind a delete): created later.
update public.webhook_deliveries set created_at = now() + interval '1 second'
 where id = (select id from public.webhook_deliveries where webhook_id = :'gone' order by id limit 1);
delete from public.webhooks where id = :'gone';
select results_eq(format('select * from pg_temp.states(%L)', :'gone'), $$values (5, 3)$$,
  'deleting an endpoint with 8 pending deliveries cancels a chunk of 3 in the delete');
select results_eq(format($$select reason, through from private.webhook_cancellations where webhook_id = %L$$, :'gone'),
  $$values ('endpoint deleted'::text, 'infinity'::timestamptz)$$,
  'and leaves the rest to the claims, though the endpoint is gone: all of them, whenever created');
insert into claimed select 'c6', * from private.claim_due_deliveries('worker-1', 10, 60);
insert into claimed select 'c7', * from private.claim_due_deliveries('worker-1', 10, 60);
select results_eq(format('select * from pg_temp.states(%L)', :'gone'), $$values (0, 8)$$,
  'two claims later all 8 are cancelled');
select is((select count(*)::integer from private.webhook_cancellations), 0, 'and the cancellation is ended');
select is((select count(*)::integer from public.webhook_deliveries where webhook_id = :'gone' and attempt_count > 0), 0,
  'none was ever attempted');

-- Endpoints being cancelled take no place in anyone's claim ---------------------------------
-- Three endpoints of one tenant, each disabled with a backlog larger than a chunk and enabled
-- again a second later (a script pausing and resuming them); then another tenant's event.
-- A claim of 3 visits at most 3 endpoints, those waiting longest first: before
-- 20261201090100 it visited these three (their schedule said ready since their oldest
-- backlog), took nothing from them, and returned nothing to anyone.
select tests.create_company('Paused and resumed') as company_g \gset
select array_agg(tests.create_webhook(:'company_g', 'PROCESS_CREATED', format('https://resumed-%s.example.com/hook', n)))
    as resumed
  from generate_series(1, 3) n \gset
select private.enqueue_webhook_event(:'company_g', 'PROCESS_CREATED', jsonb_build_object('n', n)) from generate_series(1, 8) n;
delete from private.webhook_endpoint_signals where webhook_id = any (:'resumed'::uuid[]);
update public.webhooks set is_active = false where id = any (:'resumed'::uuid[]);
select tests.time_passes('1 second');
update public.webhooks set is_active = true where id = any (:'resumed'::uuid[]);
select is((select count(*)::integer from private.webhook_endpoints
            where webhook_id = any (:'resumed'::uuid[]) and ready_at is not null), 0,
  'three endpoints enabled again while their backlogs are being cancelled: none is on the schedule');
select private.enqueue_webhook_event(:'company_b', 'PROCESS_CREATED', '{"n": "neighbour"}');
insert into claimed select 'c10', * from private.claim_due_deliveries('worker-1', 3, 60);
select is((select count(*)::integer from claimed where call = 'c10' and webhook_id = :'healthy'), 1,
  'another tenant''s new delivery is claimed by the next claim of 3');
-- 15 left after the disables (3 each): that claim cancelled a chunk, five more end them.
insert into claimed select 'c11', * from private.claim_due_deliveries('worker-1', 3, 60);
insert into claimed select 'c11', * from private.claim_due_deliveries('worker-1', 3, 60);
insert into claimed select 'c11', * from private.claim_due_deliveries('worker-1', 3, 60);
insert into claimed select 'c11', * from private.claim_due_deliveries('worker-1', 3, 60);
insert into claimed select 'c11', * from private.claim_due_deliveries('worker-1', 3, 60);
select results_eq(
  format($$select count(*) filter (where state = 'cancelled')::integer, count(*) filter (where state = 'pending')::integer,
                  (select count(*)::integer from claimed c where c.webhook_id = any (%1$L::uuid[]))
            from public.webhook_deliveries where webhook_id = any (%1$L::uuid[])$$, :'resumed'),
  $$values (24, 0, 0)$$,
  'the claims cancelled their backlogs meanwhile, a chunk each: all 24 cancelled, none sent');
select private.enqueue_webhook_event(:'company_g', 'PROCESS_CREATED', '{"n": "after"}');
insert into claimed select 'c12', * from private.claim_due_deliveries('worker-1', 10, 60);
select is((select count(*)::integer from claimed where call = 'c12' and webhook_id = any (:'resumed'::uuid[])), 3,
  'once the cancellations have ended, a new event goes to all three');

-- Bad input ---------------------------------------------------------------------------------
select throws_ok($$update private.webhook_settings set cancel_batch_size = 0$$, '23514', null,
  'cancel_batch_size must be at least 1');

select * from finish();
rollback;

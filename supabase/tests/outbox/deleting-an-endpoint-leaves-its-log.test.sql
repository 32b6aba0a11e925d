-- Deleting an endpoint leaves its delivery log alone (migration 20261130120000): the rows of
-- its history are not written again (same row versions), they keep the deleted endpoint's
-- id, and its pending delivery is cancelled. Redeliver says the endpoint was deleted. A
-- pending delivery whose endpoint no longer exists (nothing creates one by design: writes
-- and RPCs lock their endpoints) is cancelled by the claims that follow, not left waiting
-- forever.
begin;
select plan(10);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://gone.example.com/hook') as hook \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', format('{"n": %s}', n)::jsonb)
  from generate_series(1, 3) n;
select array_agg(id order by id) as ids from public.webhook_deliveries where webhook_id = :'hook' \gset
update public.webhook_deliveries set state = 'succeeded', next_attempt_at = null, completed_at = now()
 where id = (:'ids'::uuid[])[1];
update public.webhook_deliveries set state = 'failed', next_attempt_at = null, completed_at = now(), last_error = 'HTTP 500'
 where id = (:'ids'::uuid[])[2];
select (:'ids'::uuid[])[2] as failed_one, (:'ids'::uuid[])[3] as pending_one \gset
select array_agg(ctid::text order by id) as history_before from public.webhook_deliveries
 where id = any (:'ids'::uuid[]) and state <> 'pending' \gset

select tests.authenticate_as(:'admin_a');
delete from public.webhooks where id = :'hook';
select tests.clear_authentication();

select is((select array_agg(ctid::text order by id) from public.webhook_deliveries
            where id = any (:'ids'::uuid[]) and id <> :'pending_one'),
  :'history_before', 'the ended deliveries are not written again: same row versions');
select results_eq(
  format($$select state::text, webhook_id from public.webhook_deliveries where id = any (%L::uuid[]) order by id$$, :'ids'),
  format($$values ('succeeded', %1$L::uuid), ('failed', %1$L::uuid), ('cancelled', %1$L::uuid)$$, :'hook'),
  'all three keep the id of the endpoint they went to; the pending one is cancelled');
select is((select last_error from public.webhook_deliveries where id = :'pending_one'), 'endpoint deleted',
  'with the reason');

select tests.authenticate_as(:'admin_a');
select throws_ok(format('select public.redeliver_webhook_delivery(%L)', :'failed_one'),
  '55000', format('the endpoint of delivery %s was deleted', :'failed_one'),
  'redeliver says the endpoint was deleted');
select is((select count(*) from public.webhook_deliveries where redelivery_of = :'failed_one'), 0::bigint, 'and creates nothing');
select tests.clear_authentication();

-- Last line: deliveries nothing should have created. One names an endpoint that no longer
-- exists (its insert signals it); one has null, as a delete left them before this migration.
select e.id as event_id from public.webhook_events e where e.company_id = :'company_a' limit 1 \gset
insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at)
values (:'company_a', :'event_id', gen_random_uuid(), now()), (:'company_a', :'event_id', null, now());
select is((select count(*) from private.claim_due_deliveries('worker-1', 50, 60) c where c.company_id = :'company_a'), 0::bigint,
  'the claim sends neither');
-- Each endpoint found missing gets a cancellation, as a delete leaves one (20261130140000):
-- here the one named, and the deleted hook (its signals were still there); each of the
-- next two claims ends one of them.
select is((select count(*) from private.webhook_cancellations), 2::bigint,
  'the claim leaves a cancellation for each endpoint it found missing');
select count(*) as claimed_later from private.claim_due_deliveries('worker-1', 50, 60) \gset
select count(*) as claimed_later from private.claim_due_deliveries('worker-1', 50, 60) \gset
select results_eq(
  format($$select state::text, last_error from public.webhook_deliveries
            where company_id = %L and event_id = %L and id <> all (%L::uuid[]) order by webhook_id nulls last$$,
         :'company_a', :'event_id', :'ids'),
  $$values ('cancelled', 'endpoint deleted'), ('cancelled', 'endpoint deleted')$$,
  'and cancels both: a delivery whose endpoint is gone never waits forever');
select is((select count(*) from private.webhook_endpoint_signals s
            where not exists (select 1 from private.webhook_endpoints e where e.webhook_id = s.webhook_id)), 0::bigint,
  'no signal of a missing endpoint is left');

select is((select count(*) from private.webhook_cancellations), 0::bigint, 'and no cancellation is left');

select * from finish();
rollback;

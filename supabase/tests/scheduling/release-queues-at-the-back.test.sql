-- A dispatcher's release never moves an endpoint ahead in the claims' line
-- (20261202090100). Two tenants' endpoints, each with a backlog an hour old, wait in line:
-- the mover first, the waiter behind it. A claim serves the mover (to the back of the
-- line); its dispatcher gives the delivery back (it is stopping). The mover then waits
-- behind the waiter, as after any turn, not at its oldest delivery an hour ago, and the
-- next claim serves the waiter.
begin;
select plan(5);

select tests.create_company('Mover') as mover_co \gset
select tests.create_company('Waiter') as waiter_co \gset
select tests.create_webhook(:'mover_co', 'PROCESS_REVISED', 'https://mover.example.com/hook') as mover \gset
select tests.create_webhook(:'waiter_co', 'PROCESS_REVISED', 'https://waiter.example.com/hook') as waiter \gset
select count(private.enqueue_webhook_event(c, 'PROCESS_REVISED', '{}'))
  from generate_series(1, 3), unnest(array[:'mover_co', :'waiter_co']::uuid[]) c \gset
select tests.time_passes('1 hour');
delete from private.webhook_endpoint_signals;
update private.webhook_endpoints set ready_at = now() - interval '2 seconds' where webhook_id = :'mover';
update private.webhook_endpoints set ready_at = now() - interval '1 second' where webhook_id = :'waiter';

select webhook_id as served, delivery_id as leased from private.claim_due_deliveries('worker-1', 1, 60) \gset
select is(:'served'::uuid, :'mover'::uuid, 'a claim of one serves the mover, first in line');

select is(private.release_deliveries('worker-1', array[:'leased'::uuid]), 1, 'its dispatcher gives the delivery back');
select is((select next_attempt_at from public.webhook_deliveries where id = :'leased'), now(), 'the delivery is due again');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'mover'), now(),
  'the mover waits from now, at the back of the line (not from its oldest delivery, an hour ago)');
select is((select webhook_id from private.claim_due_deliveries('worker-2', 1, 60)), :'waiter'::uuid,
  'the next claim of one serves the waiter');

select * from finish();
rollback;

-- An ADMIN's change never moves an endpoint ahead in the claims' line (20261201090600).
-- Two tenants' endpoints, each with a backlog an hour old, wait in line: the other
-- tenant's since two seconds ago, the mover's since one (a claim had just served it). Each
-- change an ADMIN can make to the mover (cap, rate, url, delivery order, a cancelled
-- delivery) leaves it where it stood, not at its oldest delivery an hour ago, ahead of the
-- other tenant; one not in line joins it at the back; a change that makes it wait longer
-- still does (that case passes on the old code too: it guards the rule). So do the claims
-- that finish a change's work: each chunk of a switch to parallel, and the end of the
-- cancellation an endpoint enabled again left.
begin;
select plan(17);

select tests.create_company('Mover') as mover_co \gset
select tests.create_company('Waiter') as waiter_co \gset
select tests.create_user('admin@mover.example.com', :'mover_co', 'ADMIN') as mover_admin \gset
select tests.create_webhook(:'mover_co', 'PROCESS_REVISED', 'https://mover.example.com/hook') as mover \gset
select tests.create_webhook(:'waiter_co', 'PROCESS_REVISED', 'https://waiter.example.com/hook') as waiter \gset
select count(private.enqueue_webhook_event(c, 'PROCESS_REVISED', '{}'))
  from generate_series(1, 3), unnest(array[:'mover_co', :'waiter_co']::uuid[]) c \gset
select tests.time_passes('1 hour');
delete from private.webhook_endpoint_signals;

-- Puts both in line again: the waiter since two seconds ago, the mover since one.
create function pg_temp.line_up() returns void language sql as $$
  update private.webhook_endpoints set ready_at = null where ready_at is not null;
  update private.webhook_endpoints set ready_at = now() - interval '2 seconds' where webhook_id = (select id from public.webhooks where url = 'https://waiter.example.com/hook');
  update private.webhook_endpoints set ready_at = now() - interval '1 second' where webhook_id = (select id from public.webhooks where url like 'https://mover.example.com/%');
$$;
create function pg_temp.mover_ready_at() returns timestamptz language sql as $$
  select e.ready_at from private.webhook_endpoints e join public.webhooks w on w.id = e.webhook_id
   where w.url like 'https://mover.example.com/%';
$$;

select pg_temp.line_up();
update public.webhooks set max_concurrent_requests = 5 where id = :'mover';
select is(pg_temp.mover_ready_at(), now() - interval '1 second', 'a new cap: the mover keeps its place');
select is((select webhook_id from private.claim_due_deliveries('worker-1', 1, 60)), :'waiter'::uuid,
  'and a claim of one serves the tenant that waited longer');

select pg_temp.line_up();
update public.webhooks set max_requests_per_second = 50 where id = :'mover';
select is(pg_temp.mover_ready_at(), now() - interval '1 second', 'a new rate: it keeps its place');

select pg_temp.line_up();
update public.webhooks set url = 'https://mover.example.com/v2' where id = :'mover';
select is(pg_temp.mover_ready_at(), now() - interval '1 second', 'a new url: it keeps its place');

select pg_temp.line_up();
update public.webhooks set delivery_order = 'ordered' where id = :'mover';
update public.webhooks set delivery_order = 'parallel' where id = :'mover';
select is(pg_temp.mover_ready_at(), now() - interval '1 second', 'switched back to parallel: it keeps its place');

select pg_temp.line_up();
select tests.authenticate_as(:'mover_admin');
select isnt(public.cancel_webhook_delivery((select d.id from public.webhook_deliveries d
                                             where d.webhook_id = :'mover' and d.state = 'pending'
                                             order by d.created_at limit 1)), null,
  'the mover''s ADMIN cancels one of its deliveries');
select tests.clear_authentication();
select is(pg_temp.mover_ready_at(), now() - interval '1 second', 'after the cancel it keeps its place');

-- Not in line (waiting on its rate bucket, say): a change that lets it go joins the line at
-- the back, from now.
select pg_temp.line_up();
update private.webhook_endpoints set ready_at = now() + interval '1 minute' where webhook_id = :'mover';
update public.webhooks set max_requests_per_second = null where id = :'mover';
select is(pg_temp.mover_ready_at(), now(), 'no rate any more: from now, at the back of the line');

-- A change that makes it wait longer still does: one request in flight, a cap of one.
select pg_temp.line_up();
update private.webhook_endpoints set ready_at = null where webhook_id = :'waiter';
select is((select count(*)::integer from private.claim_due_deliveries('worker-2', 1, 60) where webhook_id = :'mover'), 1,
  'a claim takes one of the mover''s');
update private.webhook_endpoints set ready_at = now() - interval '1 second' where webhook_id = :'mover';
update public.webhooks set max_concurrent_requests = 1 where id = :'mover';
select is(pg_temp.mover_ready_at(), now() + interval '60 seconds', 'at its new cap of one, it waits for that lease');

-- The claims finish a switch to parallel in chunks (cancel_batch_size, two here): a claim
-- that releases a chunk leaves the endpoint where it stood, and serves the other tenant first.
select tests.create_company('Orderly') as orderly_co \gset
select tests.create_webhook(:'orderly_co', 'PROCESS_REVISED', 'https://orderly.example.com/hook') as orderly \gset
update public.webhooks set delivery_order = 'ordered' where id = :'orderly';
select count(private.enqueue_webhook_event(:'orderly_co', 'PROCESS_REVISED', '{"process_id": "p-1"}')) from generate_series(1, 7) \gset
update private.webhook_settings set cancel_batch_size = 2;
select tests.time_passes('1 hour');
delete from private.webhook_endpoint_signals;
update private.webhook_endpoints set ready_at = null where ready_at is not null;
update private.webhook_endpoints set ready_at = now() - interval '2 seconds' where webhook_id = :'waiter';
update private.webhook_endpoints set ready_at = now() - interval '1 second' where webhook_id = :'orderly';
update public.webhooks set delivery_order = 'parallel' where id = :'orderly';
select is((select count(*)::integer from private.webhook_order_releases where webhook_id = :'orderly'), 1,
  'switched to parallel with more held than a chunk: the claims release the rest');
select is((select webhook_id from private.claim_due_deliveries('worker-3', 1, 60)), :'waiter'::uuid,
  'a claim that releases a chunk still serves the tenant that waited longer');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'orderly'), now() - interval '1 second',
  'and leaves the switched endpoint where it stood');

-- Disabled with a backlog larger than a chunk, then enabled again at once: the claims end the
-- cancellation, and the endpoint, out of line meanwhile, gets its schedule back at the back.
select tests.create_company('Flicker') as flicker_co \gset
select tests.create_webhook(:'flicker_co', 'PROCESS_REVISED', 'https://flicker.example.com/hook') as flicker \gset
select count(private.enqueue_webhook_event(:'flicker_co', 'PROCESS_REVISED', '{}')) from generate_series(1, 3) \gset
update public.webhooks set is_active = false, disabled_reason = 'maintenance' where id = :'flicker';
update public.webhooks set is_active = true where id = :'flicker';
select tests.time_passes('1 hour');
-- Written after the enable, an hour ago: its own delivery, due since then.
select private.enqueue_webhook_event(:'flicker_co', 'PROCESS_REVISED', '{}') as flicker_event \gset
select tests.time_passes('1 hour');
delete from private.webhook_endpoint_signals;
update private.webhook_endpoints set ready_at = null where ready_at is not null;
update private.webhook_endpoints set ready_at = now() - interval '2 seconds' where webhook_id = :'waiter';
select is((select count(*)::integer from private.webhook_cancellations where webhook_id = :'flicker'), 1,
  'the disable left a cancellation to the claims');
select is((select webhook_id from private.claim_due_deliveries('worker-4', 1, 60)), :'waiter'::uuid,
  'a claim ends it, and serves the tenant that waited longer');
select is((select count(*)::integer from private.webhook_cancellations where webhook_id = :'flicker'), 0,
  'the cancellation is over');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'flicker'), now(),
  'and the endpoint joins the line at the back, not at its delivery of an hour ago');

select * from finish();
rollback;

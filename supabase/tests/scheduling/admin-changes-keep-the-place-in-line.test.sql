-- An ADMIN's change never moves an endpoint ahead in the claims' line (20261201090600).
-- Two tenants' endpoints, each with a backlog an hour old, wait in line: the other
-- tenant's since two seconds ago, the mover's since one (a claim had just served it). Each
-- change an ADMIN can make to the mover (cap, rate, url, delivery order, a cancelled
-- delivery) leaves it where it stood, not at its oldest delivery an hour ago, ahead of the
-- other tenant; one not in line joins it at the back; a change that makes it wait longer
-- still does.
begin;
select plan(10);

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

select * from finish();
rollback;

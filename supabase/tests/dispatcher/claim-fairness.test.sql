-- Claims are fair across endpoints: a backlog on one endpoint, however old and however
-- large, never hides another endpoint's due work. An endpoint has at most
-- its concurrency (private.endpoint_concurrency) in flight, so the rest of a claim goes to the others;
-- the endpoint that has waited longest is served first. One that a claim picked but could
-- not serve (full before its turn) keeps its place in the line (migration 20261201090400).
begin;
select plan(8);
select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://busy.example.com/hook') as busy \gset
select tests.create_webhook(:'company_a', 'PROCESS_REVISED', 'https://quiet.example.com/hook') as quiet \gset
select tests.create_webhook(:'company_a', 'PROCESS_DELETED', 'https://newcomer.example.com/hook') as newcomer \gset

-- A backlog of 600 for the busy endpoint (more than 10 batches), an hour old, which a
-- dispatcher has already been working on: 10 of them were claimed and their leases ran out.
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{}')) from generate_series(1, 600) \gset
select count(*) from private.claim_due_deliveries('worker-0', 50, 60) \gset
select tests.time_passes('1 hour');
select private.enqueue_webhook_event(:'company_a', 'PROCESS_REVISED', '{}') as quiet_event \gset

create temp table first_claim as select webhook_id from private.claim_due_deliveries('worker-1', 50, 60);
select is((select count(*) from first_claim where webhook_id = :'quiet'), 1::bigint,
  'the quiet endpoint''s one due delivery is in the first claim despite 600 older ones for another endpoint');
select is((select count(*) from first_claim where webhook_id = :'busy'), 10::bigint,
  'the busy endpoint gets its concurrency (a new endpoint''s, endpoint_concurrency_start 10), not the whole claim of 50');
select is((select count(*) from first_claim), 11::bigint,
  'and the claim comes back short rather than exceeding the cap (the quiet endpoint has nothing left)');

create temp table second_claim as select webhook_id from private.claim_due_deliveries('worker-2', 50, 60);
select is((select count(*) from second_claim), 0::bigint,
  'while the busy endpoint''s 10 are in flight, no claim takes more of it');

-- A burst of announcements: 600 single-statement transactions of the busy endpoint, then one
-- of an endpoint that never had work, with no claim in between. A claim reads a bounded window of
-- announcements (4 x batch_size), so the newcomer may wait for the next claim, but no
-- longer: the first claim consumes every announcement of the endpoints it saw.
select tests.time_passes('61 seconds');
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', '{}')) from generate_series(1, 600) \gset
select private.enqueue_webhook_event(:'company_a', 'PROCESS_DELETED', '{}') as newcomer_event \gset
create temp table burst_claims as
  select 1 as claim, webhook_id, event_id from private.claim_due_deliveries('worker-3', 50, 60);
insert into burst_claims select 2, webhook_id, event_id from private.claim_due_deliveries('worker-3', 50, 60);
select is((select count(*) from burst_claims where event_id = :'newcomer_event'), 1::bigint,
  'after a burst of 600 announcements for another endpoint, a newcomer''s delivery is in one of the next two claims');
select is((select count(*) from burst_claims where webhook_id = :'busy'), 10::bigint,
  'and the busy endpoint still never has more than its cap in flight');

-- Kept its place: two endpoints with backlogs due a minute ago; the second was served a
-- second ago (a claim or a record left it ready from then: the back of the line). A claim
-- of 2 picks both; the first fills it; the second keeps "a second ago", not its backlog's
-- minute (the front of the line, ahead of every delivery that waited since).
select tests.create_company('Line') as company_l \gset
select tests.create_webhook(:'company_l', 'PROCESS_CREATED', 'https://first.example.com/hook') as first_in_line \gset
select tests.create_webhook(:'company_l', 'PROCESS_REVISED', 'https://second.example.com/hook') as second_in_line \gset
select count(private.enqueue_webhook_event(:'company_l', t, '{}'))
  from generate_series(1, 5), unnest(array['PROCESS_CREATED', 'PROCESS_REVISED']) t \gset
select tests.time_passes('1 minute');
delete from private.webhook_endpoint_signals;
update private.webhook_endpoints set ready_at = null;  -- only these two in the line
update private.webhook_endpoints set ready_at = now() - interval '2 seconds' where webhook_id = :'first_in_line';
update private.webhook_endpoints set ready_at = now() - interval '1 second' where webhook_id = :'second_in_line';
create temp table line_claim as select webhook_id from private.claim_due_deliveries('worker-4', 2, 60);
select is((select array_agg(distinct webhook_id) from line_claim), array[:'first_in_line'::uuid],
  'a claim of 2 takes both from the first endpoint in line');
select is((select ready_at from private.webhook_endpoints where webhook_id = :'second_in_line'), now() - interval '1 second',
  'the second, picked but not served, keeps its place in the line (not its backlog''s minute)');

select * from finish();
rollback;

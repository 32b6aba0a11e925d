-- An operator gives one company a share of its own (private.webhook_company_concurrency):
-- the claim counts that company against it, every other company against
-- private.webhook_settings.company_concurrency. Raising a share (the company's own, or the
-- setting for companies without one) wakes as many of the company's waiting endpoints as
-- slots it adds; lowering one wakes nobody. Bad values are refused, naming the rule, and
-- change nothing; the row goes with its company; API roles cannot see it. (20261205090000;
-- the share itself: company-share-of-requests.test.sql.)
begin;
select plan(22);

select * from tests.create_cast() \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://one.a.example/hook') as a1 \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://two.a.example/hook') as a2 \gset
select tests.create_webhook(:'company_b', 'PROCESS_CREATED', 'https://erp.b.example/hook') as b1 \gset

select tests.create_claims_table();
create function pg_temp.taken(call text, company uuid) returns integer language sql as $$
  select count(*)::integer from claims c where c.call = taken.call and c.company_id = company
$$;
create function pg_temp.waiting(company uuid) returns integer language sql as $$
  select count(*)::integer from private.webhook_company_waiters w where w.company_id = company
$$;

-- Bad values -------------------------------------------------------------------------------------
select throws_ok(format($$insert into private.webhook_company_concurrency (company_id, concurrency, reason)
                          values (%L, 0, 'too many hanging requests')$$, :'company_a'),
  '23514', 'new row for relation "webhook_company_concurrency" violates check constraint "webhook_company_concurrency_range"',
  'a share of 0 is refused, naming the rule');
select throws_ok(format($$insert into private.webhook_company_concurrency (company_id, concurrency, reason)
                          values (%L, 500, '  ')$$, :'company_a'),
  '23514', 'new row for relation "webhook_company_concurrency" violates check constraint "webhook_company_concurrency_reason_given"',
  'a share without a reason is refused: the next operator must know why this company differs');
select throws_ok($$insert into private.webhook_company_concurrency (company_id, concurrency, reason)
                   values ('00000000-0000-4000-8000-000000000000', 500, 'no such company')$$,
  '23503', null, 'a share for a company that does not exist is refused');
select is((select count(*)::integer from private.webhook_company_concurrency), 0, 'and none of them changed anything');

-- A company's own share, and the setting for everyone else ----------------------------------------
update private.webhook_settings set company_concurrency = 4;
insert into private.webhook_company_concurrency (company_id, concurrency, reason)
values (:'company_a', 12, 'ERP cluster of the big plant takes more');
select is(private.company_concurrency(:'company_a'), 12, 'company A''s share is its own');
select is(private.company_concurrency(:'company_b'), 4, 'company B''s is the setting');

-- 15 events to each of A's two endpoints (each may have 10 in flight), 10 to B's one.
select count(private.enqueue_webhook_event(:'company_a', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 15) n \gset
select count(private.enqueue_webhook_event(:'company_b', 'PROCESS_CREATED', jsonb_build_object('n', n)))
  from generate_series(1, 10) n \gset

insert into claims select 'w1', * from private.claim_due_deliveries('worker-1', 100, 60);
select is(pg_temp.taken('w1', :'company_a'), 12, 'company A''s endpoints could take 20: the claim takes its own share, 12');
select is(pg_temp.taken('w1', :'company_b'), 4, 'company B gets the setting''s 4');
insert into claims select 'w2', * from private.claim_due_deliveries('worker-2', 100, 60);
select is(pg_temp.taken('w2', :'company_a') + pg_temp.taken('w2', :'company_b'), 0, 'both are at their shares: the next claim takes none');
select is(pg_temp.waiting(:'company_a'), 1, 'company A''s endpoint with due work waits for a slot');
select is(pg_temp.waiting(:'company_b'), 1, 'so does company B''s');

-- Raising a company's own share wakes its waiting endpoints ---------------------------------------
update private.webhook_company_concurrency set concurrency = 15 where company_id = :'company_a';
select is(pg_temp.waiting(:'company_a'), 0, 'raising company A''s share to 15 wakes its waiting endpoint at once');
select is(pg_temp.waiting(:'company_b'), 1, 'and leaves company B''s waiting');
insert into claims select 'w3', * from private.claim_due_deliveries('worker-2', 100, 60);
select is(pg_temp.taken('w3', :'company_a'), 3, 'the next claim takes the 3 slots it added, and no more');
insert into claims select 'w4', * from private.claim_due_deliveries('worker-2', 100, 60);
select is(pg_temp.waiting(:'company_a'), 1, 'at its share again, company A''s endpoint waits again');

-- Raising the setting wakes the companies without a share of their own ---------------------------
update private.webhook_settings set company_concurrency = 6;
select is(pg_temp.waiting(:'company_b'), 0, 'raising the setting to 6 wakes company B''s waiting endpoint');
select is(pg_temp.waiting(:'company_a'), 1, 'company A keeps its own share: its endpoint still waits');
insert into claims select 'w5', * from private.claim_due_deliveries('worker-3', 100, 60);
select results_eq(format($$select %s, %s$$, pg_temp.taken('w5', :'company_b'), pg_temp.taken('w5', :'company_a')),
  $$values (2, 0)$$, 'the next claim takes B''s 2 new slots and nothing of A');

-- Lowering wakes nobody ----------------------------------------------------------------------------
delete from private.webhook_company_concurrency where company_id = :'company_a';
select results_eq(format($$select private.company_concurrency(%L), %s$$, :'company_a', pg_temp.waiting(:'company_a')),
  $$values (6, 1)$$, 'without its own row company A has the setting''s 6, below its 15 in flight: its endpoint keeps waiting');

-- The row goes with its company; API roles cannot see it ---------------------------------------
insert into public.companies (name) values ('Closing down') returning id as gone \gset
insert into private.webhook_company_concurrency (company_id, concurrency, reason) values (:'gone', 50, 'trial');
delete from public.companies where id = :'gone';
select is((select count(*)::integer from private.webhook_company_concurrency where company_id = :'gone'), 0,
  'a deleted company''s share is deleted with it');

select tests.authenticate_as(:'admin_a');
select throws_ok($$select * from private.webhook_company_concurrency$$, '42501', null,
  'an ADMIN cannot read the companies'' shares');
select throws_ok(format($$insert into private.webhook_company_concurrency (company_id, concurrency, reason) values (%L, 1000, 'mine')$$, :'company_a'),
  '42501', null, 'nor give their own company a larger one');
select tests.clear_authentication();

select * from finish();
rollback;

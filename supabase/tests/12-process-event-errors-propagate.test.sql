-- emit_process_event downgrades every error but 54000 to a WARNING, so a process change
-- can commit without its event: the outbox is then not atomic with its cause, and a
-- transient error (serialization failure, deadlock, lock timeout), which the client
-- would retry, becomes a silently lost event. Simulated by an injected failure.
begin;
select plan(2);
select tests.create_company('Acme') as company_a \gset
select tests.create_webhook(:'company_a', 'PROCESS_CREATED', 'https://a.example.com/hook') as hook_a \gset
create function pg_temp.fail_like_a_serialization_conflict() returns trigger language plpgsql as $$
begin
  raise exception 'could not serialize access due to concurrent update' using errcode = '40001';
end $$;
create trigger inject_failure before insert on public.webhook_events
  for each row execute function pg_temp.fail_like_a_serialization_conflict();
select throws_ok(
  format($$insert into public.processes (company_id, name) values (%L, 'P')$$, :'company_a'),
  '40001', 'could not serialize access due to concurrent update',
  'a transient failure to record the event fails the process change (so the client retries it)');
select is((select count(*)::integer from public.processes p
            where p.company_id = :'company_a'
              and not exists (select 1 from public.webhook_events e where e.payload -> 'data' ->> 'process_id' = p.id::text)),
  0, 'no process change exists without its event');
select * from finish();
rollback;

-- An ADMIN's delete that waits for a business transaction holds up no dispatcher.
--
-- A write fanning out to an endpoint holds its webhooks row (FOR KEY SHARE) until it
-- commits, and a delete of that endpoint waits for it, for as long as the write's
-- transaction lasts. Since 20261129160200 the delete locked every endpoint of the ADMIN's
-- company (their private.webhook_endpoints rows) before that wait, so any record carrying a
-- result for another endpoint of the company waited as long too, and with it every tenant
-- whose results were in the same record call: one tenant's long import plus an ADMIN's
-- delete stalled the dispatcher for everyone. The company-wide lock was there because a
-- record that updates an endpoint's row a second time re-checks the row's foreign key to
-- webhooks (FOR KEY SHARE of the webhooks row), which a delete holding that row made wait:
-- a deadlock when the delete then waited for the endpoint.
--
-- Now:
-- - private.webhook_endpoints has no foreign key to webhooks, so nothing the dispatcher
--   does ever waits for a webhooks row;
-- - a delete reacts after its rows are deleted (so after any write fanning out to them has
--   committed): one statement trigger visits the deleted endpoints in id order, locking
--   each (waiting only for a record or release in progress: milliseconds), cancels every
--   pending delivery it has, whenever created (in steps for a large backlog,
--   20261130140000), and deletes its
--   scheduling row, which the foreign key's cascade used to delete. When the whole company
--   is being deleted its deliveries go with it (cascade) and only the rows are deleted;
-- - the company-wide lock before a delete, and the per-row trigger, are dropped. A delete of
--   several endpoints still takes their locks in id order, as records do: no deadlock.
-- - PostgREST embedded the endpoint's health in webhooks through that foreign key
--   (`webhooks?select=*,webhook_endpoint_health(*)`, the client's listWebhooksWithHealth).
--   A function of the same name, public.webhook_endpoint_health(webhooks), is a computed
--   relationship that keeps that query as it was (one row per webhook; RLS as the view's).
-- Test: tests/outbox/delete-waits-without-holding-the-dispatcher.test.ts (the record waited
-- for the write before); tests/outbox/admin-changes-never-deadlock.test.ts still holds.

alter table private.webhook_endpoints drop constraint webhook_endpoints_webhook_id_fkey;
comment on column private.webhook_endpoints.webhook_id is
  'The endpoint (public.webhooks.id). No foreign key, so the dispatcher never waits for a webhooks row; a delete of the webhook deletes this row (tg_webhooks__end_deleted_endpoints).';

drop trigger lock_company_endpoints_before_delete on public.webhooks;
drop function private.tg_webhooks__lock_company_endpoints();
drop trigger cancel_pending_deliveries_on_delete on public.webhooks;
drop function private.tg_webhooks__cancel_pending_deliveries();

create function private.tg_webhooks__end_deleted_endpoints()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  gone record;
begin
  for gone in
    select o.id, exists (select 1 from public.companies c where c.id = o.company_id) as company_stays
      from old_rows o
     order by o.id
  loop
    perform 1 from private.webhook_endpoints e where e.webhook_id = gone.id for update;
    if gone.company_stays then
      perform private.cancel_pending_deliveries(gone.id, 'endpoint deleted');
    end if;
    delete from private.webhook_endpoints e where e.webhook_id = gone.id;
  end loop;
  return null;
end;
$$;
comment on function private.tg_webhooks__end_deleted_endpoints() is
  'AFTER DELETE (statement) on webhooks: in id order, locks each deleted endpoint, cancels its pending deliveries and deletes its scheduling row (20261130150000).';
revoke execute on function private.tg_webhooks__end_deleted_endpoints() from public;

create trigger end_deleted_endpoints
  after delete on public.webhooks
  referencing old table as old_rows
  for each statement execute function private.tg_webhooks__end_deleted_endpoints();

-- The health of a webhook, for PostgREST to embed (a computed relationship, one to one).
create function public.webhook_endpoint_health(webhook public.webhooks)
returns setof public.webhook_endpoint_health
rows 1
language sql
stable
set search_path = ''
as $$
  select h.* from public.webhook_endpoint_health h where h.webhook_id = webhook.id
$$;
comment on function public.webhook_endpoint_health(public.webhooks) is
  'The webhook''s row of public.webhook_endpoint_health, so that webhooks?select=*,webhook_endpoint_health(*) embeds it (a PostgREST computed relationship).';
revoke execute on function public.webhook_endpoint_health(public.webhooks) from public, anon;
grant execute on function public.webhook_endpoint_health(public.webhooks) to authenticated, service_role;

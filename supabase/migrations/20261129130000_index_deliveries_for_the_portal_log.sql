-- Indexes for the portal's deliveries log: a company's deliveries newest first, paged with
-- a keyset (created_at, id) and filtered by endpoint, state, trigger type and time range.
--
-- Rows made by one statement share created_at (a fan-out, a replay), so id breaks ties and
-- the indexes carry it: a page is then one index range scan that stops after the page,
-- at any depth. They replace the (company_id, created_at desc) and (webhook_id, created_at
-- desc) indexes (same leading columns, so whatever those served is still served) and add
-- nothing to what the business path writes per delivery.
create index webhook_deliveries_company_log_idx
  on public.webhook_deliveries (company_id, created_at desc, id desc);
drop index public.webhook_deliveries_company_created_idx;

create index webhook_deliveries_webhook_log_idx
  on public.webhook_deliveries (webhook_id, created_at desc, id desc);
drop index public.webhook_deliveries_webhook_created_idx;

-- "Show me what failed": failed and cancelled deliveries are few, and a row enters this
-- index only when a delivery closes unsuccessfully (never on insert, never on success).
create index webhook_deliveries_company_unsuccessful_log_idx
  on public.webhook_deliveries (company_id, state, created_at desc, id desc)
  where state in ('failed', 'cancelled');

-- The trigger-type filter starts from the company's events of that type. Replaces
-- (company_id, created_at desc), which no query of ours uses without a trigger type.
create index webhook_events_company_type_created_idx
  on public.webhook_events (company_id, trigger_type, created_at desc);
drop index public.webhook_events_company_created_idx;

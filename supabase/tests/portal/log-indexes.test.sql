-- The indexes the portal's deliveries log pages with (keyset on created_at, id). The
-- speed they buy is measured by `npm run bench:portal`; this holds their shape, so a later
-- migration cannot silently drop the tie-breaker the keyset relies on.
begin;
select plan(8);

select has_index('public', 'webhook_deliveries', 'webhook_deliveries_company_log_idx',
  array['company_id', 'created_at', 'id'], 'deliveries by company, newest first, id as tie-breaker');
select has_index('public', 'webhook_deliveries', 'webhook_deliveries_webhook_log_idx',
  array['webhook_id', 'created_at', 'id'], 'deliveries by endpoint, newest first, id as tie-breaker');
select has_index('public', 'webhook_deliveries', 'webhook_deliveries_company_unsuccessful_log_idx',
  array['company_id', 'state', 'created_at', 'id'], 'failed and cancelled deliveries by company and state');
select is(
  (select pg_get_expr(i.indpred, i.indrelid) from pg_index i
    where i.indexrelid = 'public.webhook_deliveries_company_unsuccessful_log_idx'::regclass),
  $$(state = ANY (ARRAY['failed'::webhook_delivery_state, 'cancelled'::webhook_delivery_state]))$$,
  'which holds only failed and cancelled rows (nothing is written to it on insert or success)'
);
select has_index('public', 'webhook_events', 'webhook_events_company_type_created_idx',
  array['company_id', 'trigger_type', 'created_at'], 'events by company and trigger type');
select ok(
  (select bool_and(pg_get_indexdef(i) ~ 'created_at DESC, id DESC')
     from unnest(array['public.webhook_deliveries_company_log_idx'::regclass,
                       'public.webhook_deliveries_webhook_log_idx'::regclass]) i),
  'both log indexes are in the page order (created_at desc, id desc)'
);
select hasnt_index('public', 'webhook_deliveries', 'webhook_deliveries_company_created_idx',
  'the index the company log index replaces is gone (one index per order, not two)');
select hasnt_index('public', 'webhook_deliveries', 'webhook_deliveries_webhook_created_idx',
  'the index the endpoint log index replaces is gone');

select * from finish();
rollback;

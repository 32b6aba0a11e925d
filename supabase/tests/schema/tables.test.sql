-- The public contract of the foundation tables: names, column types, keys, foreign keys
-- and the seeded catalogues, and the delivery states and attempt outcomes clients read.
-- Serial's documented columns are fixed (DESIGN.md); a change here is a breaking change
-- for clients.
begin;
select plan(90);

-- Tables ------------------------------------------------------------------------------
select has_table('public', 'companies', 'public.companies exists');
select has_table('public', 'user_types', 'public.user_types exists');
select has_table('public', 'users', 'public.users exists');
select has_table('public', 'processes', 'public.processes exists');
select has_table('public', 'webhook_trigger_types', 'public.webhook_trigger_types exists');
select has_table('public', 'webhooks', 'public.webhooks exists');

-- webhooks: Serial's columns exactly, plus ours ------------------------------------------
select col_type_is('public', 'webhooks', 'id', 'uuid', 'webhooks.id is uuid');
select col_type_is('public', 'webhooks', 'company_id', 'uuid', 'webhooks.company_id is uuid');
select col_type_is('public', 'webhooks', 'trigger_type', 'text', 'webhooks.trigger_type is text');
select col_type_is('public', 'webhooks', 'url', 'text', 'webhooks.url is text');
select col_type_is('public', 'webhooks', 'created_at', 'timestamp with time zone', 'webhooks.created_at is timestamptz');
select col_type_is('public', 'webhooks', 'updated_at', 'timestamp with time zone', 'webhooks.updated_at is timestamptz');
select col_type_is('public', 'webhooks', 'is_active', 'boolean', 'webhooks.is_active is boolean');
select col_type_is('public', 'webhooks', 'description', 'text', 'webhooks.description is text');
select col_is_pk('public', 'webhooks', 'id', 'webhooks.id is the primary key');
select col_not_null('public', 'webhooks', 'company_id', 'webhooks.company_id is not null');
select col_not_null('public', 'webhooks', 'trigger_type', 'webhooks.trigger_type is not null');
select col_not_null('public', 'webhooks', 'url', 'webhooks.url is not null');
select col_not_null('public', 'webhooks', 'created_at', 'webhooks.created_at is not null');
select col_not_null('public', 'webhooks', 'updated_at', 'webhooks.updated_at is not null');
select col_not_null('public', 'webhooks', 'is_active', 'webhooks.is_active is not null');
select col_default_is('public', 'webhooks', 'is_active', 'true', 'a new webhook is active by default');
select fk_ok('public', 'webhooks', 'company_id', 'public', 'companies', 'id',
             'webhooks.company_id references companies.id');
select fk_ok('public', 'webhooks', 'trigger_type', 'public', 'webhook_trigger_types', 'name',
             'webhooks.trigger_type references webhook_trigger_types.name');
select is(
  (select pg_get_indexdef(i.indexrelid)
     from pg_index i
    where i.indrelid = 'public.webhooks'::regclass
      and i.indexrelid = 'public.webhooks_company_trigger_url_key'::regclass
      and i.indisunique),
  $$CREATE UNIQUE INDEX webhooks_company_trigger_url_key ON public.webhooks USING btree (company_id, trigger_type, ((url || ''::text)))$$,
  'webhooks_company_trigger_url_key is unique over (company_id, trigger_type, url), as an expression so url is no key column'
);

-- companies ----------------------------------------------------------------------------
select col_type_is('public', 'companies', 'id', 'uuid', 'companies.id is uuid');
select col_type_is('public', 'companies', 'created_at', 'timestamp with time zone', 'companies.created_at is timestamptz');
select col_type_is('public', 'companies', 'name', 'text', 'companies.name is text');
select col_type_is('public', 'companies', 'is_active', 'boolean', 'companies.is_active is boolean');
select col_type_is('public', 'companies', 'config', 'jsonb', 'companies.config is jsonb');
select col_is_pk('public', 'companies', 'id', 'companies.id is the primary key');
select col_not_null('public', 'companies', 'name', 'companies.name is not null');

-- user_types ---------------------------------------------------------------------------
select col_is_pk('public', 'user_types', 'type', 'user_types.type is the primary key');
select set_has(
  'select type from public.user_types',
  $$values ('ADMIN'), ('MEMBER'), ('OPERATOR')$$,
  'user_types is seeded with ADMIN, MEMBER and OPERATOR'
);

-- users --------------------------------------------------------------------------------
select col_type_is('public', 'users', 'supabase_uid', 'uuid', 'users.supabase_uid is uuid');
select col_type_is('public', 'users', 'company_id', 'uuid', 'users.company_id is uuid');
select col_type_is('public', 'users', 'created_at', 'timestamp with time zone', 'users.created_at is timestamptz');
select col_type_is('public', 'users', 'is_active', 'boolean', 'users.is_active is boolean');
select col_type_is('public', 'users', 'email', 'text', 'users.email is text');
select col_type_is('public', 'users', 'first_name', 'text', 'users.first_name is text');
select col_type_is('public', 'users', 'last_name', 'text', 'users.last_name is text');
select col_type_is('public', 'users', 'role', 'text', 'users.role is text');
select has_column('public', 'users', 'default_station_id', 'users.default_station_id exists');
select col_type_is('public', 'users', 'title', 'text', 'users.title is text');
select col_is_pk('public', 'users', 'supabase_uid', 'users.supabase_uid is the primary key');
select col_is_null('public', 'users', 'company_id', 'users.company_id is nullable (a user may have no company)');
select col_not_null('public', 'users', 'email', 'users.email is not null');
select col_not_null('public', 'users', 'role', 'users.role is not null');
select col_default_is('public', 'users', 'is_active', 'true', 'a new user is active by default');
select fk_ok('public', 'users', 'supabase_uid', 'auth', 'users', 'id', 'users.supabase_uid references auth.users.id');
select fk_ok('public', 'users', 'company_id', 'public', 'companies', 'id', 'users.company_id references companies.id');
select fk_ok('public', 'users', 'role', 'public', 'user_types', 'type', 'users.role references user_types.type');

-- processes: Serial's documented columns ------------------------------------------------
select col_type_is('public', 'processes', 'id', 'uuid', 'processes.id is uuid');
select col_type_is('public', 'processes', 'company_id', 'uuid', 'processes.company_id is uuid');
select col_type_is('public', 'processes', 'name', 'text', 'processes.name is text');
select col_type_is('public', 'processes', 'created_at', 'timestamp with time zone', 'processes.created_at is timestamptz');
select col_type_is('public', 'processes', 'use_api', 'boolean', 'processes.use_api is boolean');
select col_type_is('public', 'processes', 'record_operator', 'boolean', 'processes.record_operator is boolean');
select col_type_is('public', 'processes', 'is_mandatory', 'boolean', 'processes.is_mandatory is boolean');
select col_type_is('public', 'processes', 'break_prior_links', 'boolean', 'processes.break_prior_links is boolean');
select col_type_is('public', 'processes', 'dependent_process_ids', 'uuid[]', 'processes.dependent_process_ids is uuid[]');
select col_type_is('public', 'processes', 'type', 'text', 'processes.type is text');
select col_type_is('public', 'processes', 'revision', 'bigint', 'processes.revision is bigint');
select col_type_is('public', 'processes', 'carbon_copy', 'jsonb', 'processes.carbon_copy is jsonb');
select col_type_is('public', 'processes', 'revision_description', 'text', 'processes.revision_description is text');
select col_type_is('public', 'processes', 'created_by_user_id', 'uuid', 'processes.created_by_user_id is uuid');
select col_type_is('public', 'processes', 'allow_batch', 'boolean', 'processes.allow_batch is boolean');
select col_type_is('public', 'processes', 'approved', 'boolean', 'processes.approved is boolean');
select col_type_is('public', 'processes', 'approved_by_user_id', 'uuid', 'processes.approved_by_user_id is uuid');
select col_type_is('public', 'processes', 'approved_at', 'timestamp with time zone', 'processes.approved_at is timestamptz');
select col_type_is('public', 'processes', 'show_media_numbering', 'boolean', 'processes.show_media_numbering is boolean');
select col_is_pk('public', 'processes', 'id', 'processes.id is the primary key');
select col_not_null('public', 'processes', 'name', 'processes.name is not null');
select col_not_null('public', 'processes', 'type', 'processes.type is not null');
select col_not_null('public', 'processes', 'revision', 'processes.revision is not null');
select col_default_is('public', 'processes', 'revision', '1', 'processes.revision defaults to 1');
select fk_ok('public', 'processes', 'company_id', 'public', 'companies', 'id', 'processes.company_id references companies.id');
select fk_ok('public', 'processes', 'created_by_user_id', 'public', 'users', 'supabase_uid',
             'processes.created_by_user_id references users.supabase_uid');
select fk_ok('public', 'processes', 'approved_by_user_id', 'public', 'users', 'supabase_uid',
             'processes.approved_by_user_id references users.supabase_uid');

-- webhook_trigger_types ----------------------------------------------------------------
select col_is_pk('public', 'webhook_trigger_types', 'name', 'webhook_trigger_types.name is the primary key');
select set_has(
  'select name from public.webhook_trigger_types',
  $$values ('PROCESS_CREATED'), ('PROCESS_REVISED'), ('PROCESS_DELETED'), ('WEBHOOK_TEST')$$,
  'webhook_trigger_types is seeded with the process events and WEBHOOK_TEST'
);
select is_empty(
  $$select name from public.webhook_trigger_types where name !~ '^[A-Z][A-Z0-9_]*$'$$,
  'every seeded trigger type is UPPER_SNAKE'
);
select throws_ok(
  $$insert into public.webhook_trigger_types (name, description) values ('process_archived', 'lower case')$$,
  '23514',
  'new row for relation "webhook_trigger_types" violates check constraint "webhook_trigger_types_name_upper_snake"',
  'a trigger type that is not UPPER_SNAKE is rejected'
);
select throws_ok(
  $$insert into public.user_types (type, description) values ('Admin', 'mixed case')$$,
  '23514',
  'new row for relation "user_types" violates check constraint "user_types_type_upper_snake"',
  'a user type that is not UPPER_SNAKE is rejected'
);

-- Ownership cascades: a company's rows go with it ----------------------------------------
select is(
  (select array_agg(t.relname::text || '=' || c.confdeltype::text order by t.relname)
     from pg_constraint c
     join pg_class t on t.oid = c.conrelid
    where c.contype = 'f'
      and c.confrelid = 'public.companies'::regclass
      and c.conrelid in ('public.users'::regclass, 'public.processes'::regclass, 'public.webhooks'::regclass)),
  array['processes=c', 'users=c', 'webhooks=c'],
  'users, processes and webhooks are deleted with their company (on delete cascade)'
);
select is(
  (select c.confdeltype::text
     from pg_constraint c
    where c.conrelid = 'public.users'::regclass and c.confrelid = 'auth.users'::regclass),
  'c',
  'a users row is deleted with its auth user (on delete cascade)'
);

-- Delivery states and attempt outcomes are enums: clients read them from the generated types.
select col_type_is('public', 'webhook_deliveries', 'state', 'webhook_delivery_state',
  'webhook_deliveries.state is a webhook_delivery_state');
select enum_has_labels('public', 'webhook_delivery_state', array['pending', 'succeeded', 'failed', 'cancelled'],
  'a delivery is pending, succeeded, failed or cancelled');
select col_type_is('public', 'webhook_delivery_attempts', 'outcome', 'webhook_attempt_outcome',
  'webhook_delivery_attempts.outcome is a webhook_attempt_outcome');
select enum_has_labels('public', 'webhook_attempt_outcome', array['succeeded', 'failed', 'blocked'],
  'an attempt succeeded, failed or was blocked');

select * from finish();
rollback;

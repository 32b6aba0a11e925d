-- Security properties that must hold for every object, including ones added later:
-- these tests are generic over the catalogs, so a new table without RLS, a function
-- without a pinned search_path or a grant to anon fails here without editing this file.
-- Objects that belong to extensions (pgTAP lives in public while the tests run) are skipped.
begin;
select plan(12);

-- Whether a catalog object (a pg_class or pg_proc row) is a member of an extension.
create function pg_temp.belongs_to_extension(catalog regclass, object_id oid)
returns boolean
language sql
as $$
  select exists (select 1 from pg_depend d
                  where d.classid = catalog and d.objid = object_id and d.deptype = 'e')
$$;

-- The columns of a table on which a role has a column privilege, sorted.
create function pg_temp.columns_granted(grantee text, table_name regclass, privilege text)
returns text[]
language sql
as $$
  select array(select a.attname::text from pg_attribute a
                where a.attrelid = table_name and a.attnum > 0 and not a.attisdropped
                  and has_column_privilege(grantee, a.attrelid, a.attnum, privilege)
                order by 1)
$$;

-- RLS on every table in public -------------------------------------------------------------
select is(
  array(
    select c.relname::text
      from pg_class c
     where c.relnamespace = 'public'::regnamespace
       and c.relkind in ('r', 'p')
       and not c.relrowsecurity
       and not pg_temp.belongs_to_extension('pg_class', c.oid)
     order by 1),
  '{}'::text[],
  'every table in public has row level security enabled (lists the tables that do not)'
);

-- Views in public must not run with their owner's rights (which would skip RLS).
select is(
  array(
    select c.relname::text
      from pg_class c
     where c.relnamespace = 'public'::regnamespace
       and c.relkind = 'v'
       and not coalesce('security_invoker=true' = any (c.reloptions), false)
       and not pg_temp.belongs_to_extension('pg_class', c.oid)
     order by 1),
  '{}'::text[],
  'every view in public is security_invoker (lists the views that are not)'
);

-- search_path pinned on every function of ours ------------------------------------------------
select is(
  array(
    select p.pronamespace::regnamespace::text || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
      from pg_proc p
     where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
       and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) as cfg
                        where cfg like 'search_path=%')
       and not pg_temp.belongs_to_extension('pg_proc', p.oid)
     order by 1),
  '{}'::text[],
  'every function in public and private sets search_path (lists the ones that do not)'
);
select ok(
  exists (select 1 from pg_proc p
           where p.pronamespace = 'private'::regnamespace
             and p.proname = 'update_process_revision'),
  'the search_path check above really looks at our functions (update_process_revision is there)'
);

-- anon: nothing at all ---------------------------------------------------------------------
select is(
  array(
    select c.relname::text
      from pg_class c
     where c.relnamespace = 'public'::regnamespace
       and c.relkind in ('r', 'p', 'v', 'm', 'f')
       and (has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
            or has_any_column_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
       and not pg_temp.belongs_to_extension('pg_class', c.oid)
     order by 1),
  '{}'::text[],
  'anon has no privilege on any table or view in public (lists the ones it has)'
);
select is(
  array(
    select p.oid::regprocedure::text
      from pg_proc p
     where p.pronamespace = 'public'::regnamespace
       and has_function_privilege('anon', p.oid, 'EXECUTE')
       and not pg_temp.belongs_to_extension('pg_proc', p.oid)
     order by 1),
  '{}'::text[],
  'anon cannot execute any function in public (lists the ones it can)'
);
select ok(
  not has_schema_privilege('anon', 'private', 'USAGE'),
  'anon has no usage on the private schema'
);

-- authenticated: exactly the surface the policies are written for ------------------------------
select is(
  array(select priv from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) as priv
         where has_table_privilege('authenticated', 'public.webhooks', priv)
         order by 1),
  array['DELETE', 'SELECT'],
  'authenticated has table-wide SELECT and DELETE on webhooks, nothing else'
);
select is(
  pg_temp.columns_granted('authenticated', 'public.webhooks', 'INSERT'),
  array['company_id', 'delivery_order', 'description', 'is_active', 'max_concurrent_requests', 'max_requests_per_second', 'trigger_type', 'url'],
  'authenticated may insert only company_id, trigger_type, url, is_active, description, delivery_order, max_concurrent_requests, max_requests_per_second into webhooks (never the id)'
);
select is(
  pg_temp.columns_granted('authenticated', 'public.webhooks', 'UPDATE'),
  array['delivery_order', 'description', 'is_active', 'max_concurrent_requests', 'max_requests_per_second', 'trigger_type', 'url'],
  'authenticated may update only trigger_type, url, is_active, description, delivery_order, max_concurrent_requests, max_requests_per_second of webhooks (never company_id)'
);
select is(
  pg_temp.columns_granted('authenticated', 'public.processes', 'UPDATE'),
  array['allow_batch', 'approved', 'approved_at', 'approved_by_user_id', 'break_prior_links',
        'dependent_process_ids', 'is_mandatory', 'name', 'record_operator', 'revision_description',
        'show_media_numbering', 'type', 'use_api'],
  'authenticated may not update processes.company_id, revision, carbon_copy, created_* or updated_at'
);
select is(
  array(select c.relname::text
          from pg_class c
         where c.oid in ('public.companies'::regclass, 'public.users'::regclass,
                         'public.user_types'::regclass, 'public.webhook_trigger_types'::regclass)
           and (has_table_privilege('authenticated', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                or has_any_column_privilege('authenticated', c.oid, 'INSERT, UPDATE'))
         order by 1),
  '{}'::text[],
  'authenticated cannot write companies, users, user_types or webhook_trigger_types'
);

select * from finish();
rollback;

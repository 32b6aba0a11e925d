-- API users can no longer ask PostgREST for the planner's row estimate, which counted
-- every company's rows.
--
-- `Prefer: count=planned` answers Content-Range with the planner's estimate for the query
-- (EXPLAIN), and `count=estimated` with that estimate once the exact count passes
-- db-max-rows. The planner estimates from the table's statistics, which cover every
-- company: RLS filters the rows, not the estimate. An ADMIN of company A asking for
-- `webhook_deliveries?company_id=eq.<B's id>&limit=0` with `count=planned` got
-- `*/3000` for a company B with 3,000 deliveries and `*/1` for an id nobody uses: B's
-- existence and size, on every table with statistics (webhooks, events, deliveries,
-- attempts, processes, users). DESIGN.md: no answer to a tenant differs by another
-- tenant's data.
--
-- PostgREST calls api_guard.refuse_planned_counts() at the start of every request (its
-- db-pre-request, set on the authenticator role below, as Supabase documents for request
-- checks). It runs as the request's role, anon included, so it cannot live in private
-- (anon has no USAGE there, by design): it gets a schema of its own, api_guard, which
-- holds only request checks and is not exposed through the API (db-schemas is public).
-- For the API roles RLS applies to (anon, authenticated), a planned or estimated count is
-- refused with 400 before the query runs; `count=exact` (which counts only the rows the
-- caller may see) is unaffected, and so is the service role (no RLS to keep).
-- A project that already has a pre-request function of its own calls this one from it
-- (below: the deploy stops until it does).
-- Tests: tests/frontend/planned-counts-reveal-no-tenant.test.ts, schema/planned-count-guard-installed.

create schema api_guard;
comment on schema api_guard is
  'Checks PostgREST runs before every API request (db-pre-request). Usable by the API roles, not exposed through the API.';
revoke all on schema api_guard from public;
grant usage on schema api_guard to anon, authenticated, service_role;

create function api_guard.refuse_planned_counts()
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  -- Anywhere in the header: PostgREST trims each preference of bytes the pattern's
  -- boundaries would not know, and refusing a stray "xcount=planned" too costs nothing.
  if current_user in ('anon', 'authenticated')
     and lower(coalesce(current_setting('request.headers', true)::json ->> 'prefer', ''))
         ~ 'count[[:space:]]*=[[:space:]]*(planned|estimated)' then
    raise exception 'Prefer: count=planned and count=estimated are not available'
      using errcode = '22023',
            detail = 'The planner''s estimate counts the rows of every company, not only the rows you may see.',
            hint = 'Use Prefer: count=exact (supabase-js: { count: ''exact'' }).';
  end if;
end;
$$;
comment on function api_guard.refuse_planned_counts() is
  'PostgREST''s db-pre-request: refuses Prefer: count=planned|estimated to anon and authenticated (the planner''s estimate counts every company''s rows). count=exact is unaffected.';
revoke execute on function api_guard.refuse_planned_counts() from public;
grant execute on function api_guard.refuse_planned_counts() to anon, authenticated, service_role;

-- Installing it never replaces a pre-request function the project already has (set on the
-- authenticator role, for all databases or this one): that one may hold the project's own
-- checks, and replacing it would silently drop them. Then the deploy stops and says what
-- to do: call api_guard.refuse_planned_counts() from it. (A pre-request set in PostgREST's
-- config file or environment, self-hosted, is not visible from SQL: the role's setting
-- takes precedence over it.)
--
-- Known limit: PostgREST hands SQL only the last of repeated Prefer headers, but uses the
-- first count= it finds. A client that sends "Prefer: count=planned" and then
-- "Prefer: count=exact" gets the estimate past this check, unless a gateway merges the
-- repeated header into one (the local stack's does: then it is refused). Whether hosted
-- Supabase's gateway merges them could not be tried here.
create function private.use_planned_count_guard()
returns void
language plpgsql
set search_path = ''
as $$
declare
  prior text;
  qualified text;
begin
  -- The setting in effect: one for this database (ALTER ROLE ... IN DATABASE) wins over
  -- the role's own.
  select substr(c, length('pgrst.db_pre_request=') + 1) into prior
    from pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
   where s.setrole = (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticator')
     and s.setdatabase in (0, (select d.oid from pg_catalog.pg_database d where d.datname = current_database()))
     and c like 'pgrst.db_pre_request=%'
   order by s.setdatabase desc
   limit 1;
  -- PostgREST finds an unqualified name in its exposed schema (public here).
  qualified := case when position('.' in coalesce(prior, '')) > 0 then prior else 'public.' || prior end;
  if prior is null or prior = '' then
    alter role authenticator set pgrst.db_pre_request = 'api_guard.refuse_planned_counts';
    notify pgrst, 'reload config';
  elsif qualified <> 'api_guard.refuse_planned_counts'
        and not exists (select 1
                          from pg_catalog.pg_proc p
                          join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                         where n.nspname || '.' || p.proname = qualified
                           and p.prosrc like '%api_guard.refuse_planned_counts()%') then
    raise exception 'PostgREST already calls a pre-request function of this project (%), which does not call api_guard.refuse_planned_counts()', prior
      using errcode = '55000',
            hint = format('Add "perform api_guard.refuse_planned_counts();" to %s, then deploy again (it stays the pre-request).', prior);
  end if;
end;
$$;
comment on function private.use_planned_count_guard() is
  'Makes api_guard.refuse_planned_counts() PostgREST''s pre-request, unless the project has one of its own: kept if it calls ours, else an error saying to add the call.';
revoke execute on function private.use_planned_count_guard() from public;

select private.use_planned_count_guard();

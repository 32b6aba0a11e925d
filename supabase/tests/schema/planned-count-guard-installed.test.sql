-- PostgREST's pre-request is api_guard.refuse_planned_counts() (20261202090000), and
-- installing it never replaces a pre-request function the project already has: kept if it
-- calls ours, else the deploy stops and says what to add. (What the guard refuses:
-- tests/frontend/planned-counts-reveal-no-tenant.test.ts.)
begin;
select plan(10);

create function pg_temp.pre_request() returns text language sql as $$
  select substr(c, length('pgrst.db_pre_request=') + 1)
    from pg_roles r, unnest(r.rolconfig) c
   where r.rolname = 'authenticator' and c like 'pgrst.db_pre_request=%'
$$;

select is(pg_temp.pre_request(), 'api_guard.refuse_planned_counts', 'after the migrations, PostgREST calls the guard before every request');
select lives_ok('select private.use_planned_count_guard()', 'installing it again changes nothing');
select is(pg_temp.pre_request(), 'api_guard.refuse_planned_counts', 'still the guard');

-- A project with a pre-request function of its own that does not call the guard.
create function public.projects_own_checks() returns void language plpgsql set search_path = '' as $$
begin
  null;
end;
$$;
alter role authenticator set pgrst.db_pre_request = 'public.projects_own_checks';
select throws_ok('select private.use_planned_count_guard()', '55000',
  'PostgREST already calls a pre-request function of this project (public.projects_own_checks), which does not call api_guard.refuse_planned_counts()',
  'the deploy stops, naming the project''s function');
select is(pg_temp.pre_request(), 'public.projects_own_checks', 'which stays the pre-request');

-- The project adds the call, as the hint says: its function stays, and calls ours.
create or replace function public.projects_own_checks() returns void language plpgsql set search_path = '' as $$
begin
  perform api_guard.refuse_planned_counts();
end;
$$;
select lives_ok('select private.use_planned_count_guard()', 'with the call added, the deploy goes on');
select is(pg_temp.pre_request(), 'public.projects_own_checks', 'and the project''s function stays the pre-request');

-- Named without its schema (PostgREST finds it in the exposed one): the same.
alter role authenticator set pgrst.db_pre_request = 'projects_own_checks';
select lives_ok('select private.use_planned_count_guard()', 'an unqualified name is found in public');

-- Set for this database only, it is the one in effect: a function there that does not
-- call the guard stops the deploy, though the role-wide setting is the guard.
alter role authenticator set pgrst.db_pre_request = 'api_guard.refuse_planned_counts';
create function public.other_checks() returns void language plpgsql set search_path = '' as $$
begin
  null;
end;
$$;
select format('alter role authenticator in database %I set pgrst.db_pre_request = %L', current_database(), 'public.other_checks') as set_here \gset
:set_here;
select throws_ok('select private.use_planned_count_guard()', '55000',
  'PostgREST already calls a pre-request function of this project (public.other_checks), which does not call api_guard.refuse_planned_counts()',
  'a per-database setting is the one checked');
select format('alter role authenticator in database %I reset pgrst.db_pre_request', current_database()) as reset_here \gset
:reset_here;
select lives_ok('select private.use_planned_count_guard()', 'without it, the role-wide guard stands');

select * from finish();
rollback;

-- PostgREST's pre-request is api_guard.refuse_planned_counts() (20261202090000), and
-- installing it never replaces a pre-request function the project already has: kept if it
-- calls ours, else the deploy stops and says what to add. (What the guard refuses:
-- tests/frontend/planned-counts-reveal-no-tenant.test.ts.)
begin;
select plan(7);

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

select * from finish();
rollback;

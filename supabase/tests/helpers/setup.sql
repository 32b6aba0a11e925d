-- Tests-only helpers, applied by the test runner to the throwaway test database after
-- the migrations. Never shipped as a migration.
create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

-- A company, returned by id.
create or replace function tests.create_company(name text default 'Test company')
returns uuid
language sql
set search_path = ''
as $$
  insert into public.companies (name) values (create_company.name) returning id
$$;

-- An auth user plus its public.users row (company may be null for "no company").
-- with_profile = false makes a signed-up user with no Serial profile at all.
create or replace function tests.create_user(
  email text,
  company_id uuid,
  role text default 'MEMBER',
  is_active boolean default true,
  with_profile boolean default true
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  uid uuid := gen_random_uuid();
begin
  insert into auth.users (id, email) values (uid, create_user.email);
  if with_profile then
    insert into public.users (supabase_uid, company_id, email, role, is_active)
    values (uid, create_user.company_id, create_user.email, create_user.role, create_user.is_active);
  end if;
  return uid;
end;
$$;

-- Act as a signed-in user, the way PostgREST does: role switch plus JWT claims.
create or replace function tests.authenticate_as(user_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims',
    json_build_object('sub', user_id, 'role', 'authenticated', 'aud', 'authenticated')::text, true);
  perform set_config('role', 'authenticated', true);
end;
$$;

create or replace function tests.authenticate_as_anon()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '{"role":"anon"}', true);
  perform set_config('role', 'anon', true);
end;
$$;

create or replace function tests.authenticate_as_service_role()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '{"role":"service_role"}', true);
  perform set_config('role', 'service_role', true);
end;
$$;

-- Back to the superuser running the test (to check what really changed).
create or replace function tests.clear_authentication()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', null, true);
end;
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

-- A webhook endpoint of a company, created as the superuser running the test (so RLS
-- and column grants do not get in the way of the setup), returned by id.
create or replace function tests.create_webhook(
  company_id uuid,
  trigger_type text,
  url text,
  is_active boolean default true
)
returns uuid
language sql
set search_path = ''
as $$
  insert into public.webhooks (company_id, trigger_type, url, is_active)
  values (create_webhook.company_id, create_webhook.trigger_type, create_webhook.url, create_webhook.is_active)
  returning id
$$;

grant execute on function tests.create_webhook(uuid, text, text, boolean) to anon, authenticated, service_role;

-- The statement a client sends to create a webhook, for throws_ok/lives_ok to run as
-- whoever the test authenticates as.
create or replace function tests.webhook_insert(
  company_id uuid,
  url text,
  trigger_type text default 'PROCESS_REVISED',
  description text default null
)
returns text
language sql
immutable
set search_path = ''
as $$
  select format('insert into public.webhooks (company_id, trigger_type, url, description) values (%L, %L, %L, %L)',
                company_id, trigger_type, url, description)
$$;

grant execute on function tests.webhook_insert(uuid, text, text, text) to anon, authenticated, service_role;

-- The cast: the companies and users that the RLS and permission tests check row by row,
-- made in one call and returned as one row, so that a test file says
--   select * from tests.create_cast() \gset
-- and then uses :'company_a', :'admin_a', ... as psql variables.
--
--   company_a  'Company A'             company_b  'Company B'
--   company_c  'Company C (inactive)'  (is_active = false)
--
--   no_profile         signed-up@example.test   signed up, no public.users row at all
--   no_company         no-company@example.test  MEMBER of no company
--   member_a           member@a.test            MEMBER of A
--   operator_a         operator@a.test          OPERATOR of A
--   inactive_member_a  inactive-member@a.test   MEMBER of A, is_active = false
--   inactive_admin_a   inactive-admin@a.test    ADMIN of A, is_active = false
--   admin_a            admin@a.test             ADMIN of A
--   admin_b            admin@b.test             ADMIN of B
--   member_c           member@c.test            MEMBER of C (inactive company)
--   admin_c            admin@c.test             ADMIN of C (inactive company)
--
-- with_webhooks also makes one active webhook per company plus a second in A:
--   webhook_a1  A  PROCESS_CREATED  https://a.example/created
--   webhook_a2  A  PROCESS_REVISED  https://a.example/revised
--   webhook_b   B  PROCESS_CREATED  https://b.example/created
--   webhook_c   C  PROCESS_CREATED  https://c.example/created
-- Without it those columns are null, and \gset leaves null columns unset, so a test that
-- did not ask for webhooks cannot use them by mistake.
--
-- tag makes the emails unique (member+<tag>@a.test, ...), for callers that need more than
-- one cast in a database: the vitest world (tests/support/world.ts) makes one per suite.
create or replace function tests.create_cast(with_webhooks boolean default false, tag text default null)
returns table (
  company_a uuid, company_b uuid, company_c uuid,
  no_profile uuid, no_company uuid,
  member_a uuid, operator_a uuid, inactive_member_a uuid, inactive_admin_a uuid, admin_a uuid,
  admin_b uuid,
  member_c uuid, admin_c uuid,
  webhook_a1 uuid, webhook_a2 uuid, webhook_b uuid, webhook_c uuid
)
language plpgsql
set search_path = ''
as $$
declare
  plus text := coalesce('+' || tag, '');
begin
  company_a := tests.create_company('Company A');
  company_b := tests.create_company('Company B');
  company_c := tests.create_company('Company C (inactive)');
  update public.companies set is_active = false where id = company_c;

  no_profile        := tests.create_user('signed-up' || plus || '@example.test', null, with_profile => false);
  no_company        := tests.create_user('no-company' || plus || '@example.test', null, 'MEMBER');
  member_a          := tests.create_user('member' || plus || '@a.test', company_a, 'MEMBER');
  operator_a        := tests.create_user('operator' || plus || '@a.test', company_a, 'OPERATOR');
  inactive_member_a := tests.create_user('inactive-member' || plus || '@a.test', company_a, 'MEMBER', is_active => false);
  inactive_admin_a  := tests.create_user('inactive-admin' || plus || '@a.test', company_a, 'ADMIN', is_active => false);
  admin_a           := tests.create_user('admin' || plus || '@a.test', company_a, 'ADMIN');
  admin_b           := tests.create_user('admin' || plus || '@b.test', company_b, 'ADMIN');
  member_c          := tests.create_user('member' || plus || '@c.test', company_c, 'MEMBER');
  admin_c           := tests.create_user('admin' || plus || '@c.test', company_c, 'ADMIN');

  if with_webhooks then
    webhook_a1 := tests.create_webhook(company_a, 'PROCESS_CREATED', 'https://a.example/created');
    webhook_a2 := tests.create_webhook(company_a, 'PROCESS_REVISED', 'https://a.example/revised');
    webhook_b  := tests.create_webhook(company_b, 'PROCESS_CREATED', 'https://b.example/created');
    webhook_c  := tests.create_webhook(company_c, 'PROCESS_CREATED', 'https://c.example/created');
  end if;

  return next;
end;
$$;

grant execute on function tests.create_cast(boolean, text) to anon, authenticated, service_role;

-- The constraint named by the error a statement raises: the diagnostics field that
-- throws_ok cannot see (a trigger may raise 23514 with `constraint = ...` and a message
-- that does not name it). Null when the error names no constraint, or when the statement
-- does not fail at all (its effects then stay, inside the test's transaction).
create or replace function tests.error_constraint(statement text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  named text;
begin
  execute statement;
  return null;
exception when others then
  get stacked diagnostics named = constraint_name;
  return nullif(named, '');
end;
$$;

grant execute on function tests.error_constraint(text) to anon, authenticated, service_role;

-- Time passes, as seen by the outbox: every stored instant that schedules or ages work
-- (due times, leases, endpoint readiness, health, circuit and probe times, signals) moves
-- back by `by`. Inside a test transaction now() stands still, so this is how a test lets a
-- lease run out, a retry come due or a probe interval elapse without touching one column
-- of one row by hand (which would leave the rest of the state inconsistent). Parked ordered
-- deliveries ('infinity') stay parked.
create or replace function tests.time_passes(by interval)
returns void
language sql
set search_path = ''
as $$
  update public.webhook_deliveries d
     set next_attempt_at  = case when d.next_attempt_at = 'infinity' then d.next_attempt_at else d.next_attempt_at - by end,
         lease_expires_at = d.lease_expires_at - by,
         last_attempt_at  = d.last_attempt_at - by,
         created_at       = d.created_at - by,
         completed_at     = d.completed_at - by;
  update private.webhook_endpoints e
     set ready_at         = e.ready_at - by,
         failing_since    = e.failing_since - by,
         circuit_opened_at = e.circuit_opened_at - by,
         next_probe_at    = e.next_probe_at - by,
         last_attempt_at  = e.last_attempt_at - by,
         last_success_at  = e.last_success_at - by,
         receiver_since   = e.receiver_since - by,
         rate_updated_at  = e.rate_updated_at - by;
  update private.webhook_endpoint_signals s set created_at = s.created_at - by;
  update private.webhook_cancellations c
     set through      = c.through - by,
         requested_at = c.requested_at - by;
  update private.webhook_order_releases r
     set through      = r.through - by,
         requested_at = r.requested_at - by;
$$;

grant execute on function tests.time_passes(interval) to anon, authenticated, service_role;

-- The temporary table `claims` that claim tests keep what each claim returned in: a label
-- for the call, then the columns of private.claimed_delivery, in order, read from the type
-- (one home: a column the claim gains reaches every test). Filled as
--   insert into claims select 'w1', * from private.claim_due_deliveries('worker-1', 100, 60);
create or replace function tests.create_claims_table()
returns void
language plpgsql
set search_path = ''
as $$
begin
  execute 'create temporary table claims (call text, '
       || (select string_agg(format('%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ' order by a.attnum)
             from pg_catalog.pg_attribute a
            where a.attrelid = 'private.claimed_delivery'::regclass and a.attnum > 0 and not a.attisdropped)
       || ')';
end;
$$;

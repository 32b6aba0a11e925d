-- Tenant isolation: the outbox schedules endpoints, not only deliveries.
--
-- What this adds, and why:
--   * private.webhook_endpoints: one row per endpoint with its scheduling state (ready_at:
--     when a claim should next look at it) and its health (consecutive failures, failing
--     since, circuit breaker). Claims visit only endpoints whose ready_at has come, so their
--     cost does not grow with endpoints that wait on later retries or with pending rows.
--   * Caps that hold across dispatchers: an endpoint's requests in flight are its leased
--     deliveries, counted in the database at every claim; no claim takes an endpoint past
--     private.webhook_settings.endpoint_concurrency, however many dispatchers run.
--   * A circuit breaker: after circuit_failure_threshold consecutive failures (no answer,
--     timeout, 5xx) an endpoint gets one probe at a time, at growing intervals; its other
--     deliveries wait without spending attempts. A success closes it.
--   * A business path that waits for nobody: a transaction that creates deliveries only
--     inserts rows (deliveries, and one signal per endpoint for the dispatchers to pick
--     up); it updates no row that a dispatcher or an ADMIN also updates, and it sends a
--     NOTIFY / pg_net wake-up only when no dispatcher is awake (see "Wake-ups" below).
--   * The dispatcher never locks public.webhooks rows (what ADMINs edit). It writes one
--     only to disable an endpoint (410 Gone, or failing longer than disable_after), and
--     then skips a row an ADMIN holds rather than waiting.
--
-- Lock order, everywhere: an endpoint's private.webhook_endpoints row, then its deliveries.
-- Claims take endpoint rows with SKIP LOCKED (they never wait); recording, releasing and
-- cancelling wait for them. The business path takes neither.

-- Settings that must hold across every dispatcher ----------------------------------------

alter table private.webhook_settings
  add column endpoint_concurrency integer not null default 10
    constraint webhook_settings_endpoint_concurrency_range check (endpoint_concurrency between 1 and 1000),
  add column circuit_failure_threshold integer not null default 10
    constraint webhook_settings_circuit_failure_threshold_range check (circuit_failure_threshold between 1 and 1000),
  add column circuit_probe_min_seconds integer not null default 10
    constraint webhook_settings_circuit_probe_min_range check (circuit_probe_min_seconds between 1 and 86400),
  add column circuit_probe_max_seconds integer not null default 600
    constraint webhook_settings_circuit_probe_max_range check (circuit_probe_max_seconds between 1 and 86400),
  add constraint webhook_settings_circuit_probe_order check (circuit_probe_max_seconds >= circuit_probe_min_seconds);
comment on column private.webhook_settings.endpoint_concurrency is
  'Requests in flight per endpoint, across all dispatchers (leased deliveries).';
comment on column private.webhook_settings.circuit_failure_threshold is
  'Consecutive failures (no answer, timeout, 5xx) that open an endpoint''s circuit.';
comment on column private.webhook_settings.circuit_probe_min_seconds is
  'First wait before probing an open circuit; doubles after each failed probe.';
comment on column private.webhook_settings.circuit_probe_max_seconds is
  'Longest wait between probes of an open circuit.';

-- Endpoint state ------------------------------------------------------------------------

create table private.webhook_endpoints (
  webhook_id             uuid primary key references public.webhooks (id) on delete cascade,
  -- Copied from the webhook (which never moves) for row-level security.
  company_id             uuid not null,
  -- When a claim should next look at this endpoint: its oldest due work, or when a slot
  -- or a probe frees up. Null: nothing to do until something happens to it.
  ready_at               timestamptz,
  consecutive_failures   integer not null default 0 constraint webhook_endpoints_failures_nonnegative check (consecutive_failures >= 0),
  failing_since          timestamptz,
  circuit_opened_at      timestamptz,
  probe_interval_seconds integer,
  next_probe_at          timestamptz,
  last_status            integer,
  last_error             text,
  last_attempt_at        timestamptz,
  last_success_at        timestamptz,
  constraint webhook_endpoints_circuit_complete
    check ((circuit_opened_at is null) = (next_probe_at is null)
       and (circuit_opened_at is null) = (probe_interval_seconds is null))
);
comment on table private.webhook_endpoints is
  'Per-endpoint scheduling state (ready_at) and health (failures, circuit breaker), kept by the outbox functions. ADMINs read it through public.webhook_endpoint_health.';
create index webhook_endpoints_ready_idx on private.webhook_endpoints (ready_at) where ready_at is not null;
create index webhook_endpoints_company_idx on private.webhook_endpoints (company_id);

insert into private.webhook_endpoints (webhook_id, company_id, failing_since)
select w.id, w.company_id, w.failing_since from public.webhooks w;

-- Health moves off public.webhooks: the dispatcher must not lock the rows ADMINs edit.
alter table public.webhooks drop column failing_since;

alter table private.webhook_endpoints enable row level security;
grant select (webhook_id, company_id, consecutive_failures, failing_since, circuit_opened_at,
              probe_interval_seconds, next_probe_at, last_status, last_error, last_attempt_at,
              last_success_at)
  on private.webhook_endpoints to authenticated;
create policy "Admins can view their company's endpoint health"
  on private.webhook_endpoints for select to authenticated
  using (company_id = (select private.admin_company_id()));

create view public.webhook_endpoint_health
  with (security_invoker = true)
as
select e.webhook_id,
       e.company_id,
       case when not w.is_active then 'disabled'
            when e.circuit_opened_at is not null then 'circuit_open'
            when e.failing_since is not null then 'failing'
            else 'healthy'
       end as state,
       e.consecutive_failures,
       e.failing_since,
       e.circuit_opened_at,
       e.next_probe_at,
       e.last_status,
       e.last_error,
       e.last_attempt_at,
       e.last_success_at
  from private.webhook_endpoints e
  join public.webhooks w on w.id = e.webhook_id;
comment on view public.webhook_endpoint_health is
  'Health of each endpoint: healthy, failing (since when), circuit_open (since when, next probe) or disabled. Read-only; ADMINs see their company''s.';
revoke all on public.webhook_endpoint_health from anon, authenticated;
grant select on public.webhook_endpoint_health to authenticated;

-- Deliveries: what ordered endpoints and the lease count need ---------------------------

-- Ordered delivery (an endpoint's opt-in, see the ordered-delivery migration) sets these:
-- deliveries of one ordering key go one at a time, in ordering_seq order.
alter table public.webhook_deliveries
  add column ordering_key text,
  add column ordering_seq bigint,
  add constraint webhook_deliveries_ordering_complete check ((ordering_key is null) = (ordering_seq is null));
comment on column public.webhook_deliveries.ordering_key is
  'Ordered endpoints only: deliveries sharing a key are sent one at a time, in ordering_seq order. Null: no order.';
create index webhook_deliveries_ordered_pending_idx on public.webhook_deliveries (webhook_id, ordering_key, ordering_seq)
  where state = 'pending' and ordering_key is not null;

-- Claims count an endpoint's requests in flight (its unexpired leases) with this index,
-- and find when the earliest lease runs out.
create index webhook_deliveries_leased_idx on public.webhook_deliveries (webhook_id, lease_expires_at)
  where state = 'pending' and lease_owner is not null;
-- Nothing claims through a global due index any more (claims go endpoint by endpoint).
drop index public.webhook_deliveries_due_idx;

-- The business path waits for nobody ----------------------------------------------------
--
-- The subscriber query takes no lock. FOR SHARE on the endpoints made an ADMIN disabling
-- one wait for every transaction fanning out to it (and the dispatcher's updates queue
-- behind them). A delivery committed after a concurrent disable is cancelled instead by
-- the next claim that looks at its endpoint (claim_due_deliveries checks is_active), so it
-- still ends cancelled and is never sent.

drop function private.lock_subscribed_webhooks(uuid, text);

-- One url per company and trigger type stays the rule, as a unique index on an expression
-- rather than a constraint on the columns. Postgres treats the columns of a plain unique
-- constraint as a key: an ADMIN changing url or trigger_type then locked the webhook row
-- FOR UPDATE, which conflicts with the FOR KEY SHARE that the business path's foreign-key
-- check (webhook_deliveries.webhook_id) takes, so every write fanning out to that endpoint
-- waited for the ADMIN's transaction. `url || ''` is url itself; being an expression is its
-- only purpose. Same name, same 23505 "duplicate key value violates unique constraint".
alter table public.webhooks drop constraint webhooks_company_trigger_url_key;
create unique index webhooks_company_trigger_url_key on public.webhooks (company_id, trigger_type, (url || ''));
comment on index public.webhooks_company_trigger_url_key is
  'One url per company and trigger type. An expression index on purpose: it must not make url a key column (see the scheduling migration).';

-- The endpoints an event of this company and type goes to: every active webhook
-- subscribed to it, in id order, or null when there is none. The one subscriber query:
-- enqueue_webhook_event and the process trigger each ask it once per event.
-- plpgsql rather than sql: its plan is kept for the session, and this runs on every
-- process write.
create function private.subscribed_webhooks(company_id uuid, trigger_type text)
returns uuid[]
language plpgsql
stable
set search_path = ''
as $$
begin
  return (select array_agg(w.id order by w.id)
            from public.webhooks w
           where w.company_id = subscribed_webhooks.company_id
             and w.trigger_type = subscribed_webhooks.trigger_type
             and w.is_active);
end;
$$;
revoke execute on function private.subscribed_webhooks(uuid, text) from public;

create or replace function private.enqueue_webhook_event(company_id uuid, trigger_type text, data jsonb)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  targets uuid[];
begin
  if company_id is null then
    raise exception 'company_id is required' using errcode = '22004';
  end if;
  targets := private.subscribed_webhooks(company_id, trigger_type);

  if targets is null then
    -- Still validate the input, so a caller's mistake is not hidden by an empty fan-out.
    -- (With a subscriber the type exists: webhooks.trigger_type references it.)
    if not exists (select 1 from public.webhook_trigger_types t where t.name = enqueue_webhook_event.trigger_type) then
      raise exception 'unknown webhook trigger type "%"', trigger_type
        using errcode = '23503', hint = 'Use a name from public.webhook_trigger_types.';
    end if;
    return null;  -- nobody subscribed: no event row, nothing to deliver
  end if;

  return private.insert_webhook_event(company_id, trigger_type, data, targets);
end;
$$;

create or replace function private.tg_processes__emit_webhook_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  targets uuid[];
begin
  if tg_op = 'INSERT' then
    targets := private.subscribed_webhooks(new.company_id, 'PROCESS_CREATED');
    if targets is null then
      return null;
    end if;
    perform private.emit_process_event(new.company_id, 'PROCESS_CREATED', jsonb_build_object(
      'process_id', new.id,
      'revision', new.revision,
      'process', private.process_event_data(new)), targets);
  elsif tg_op = 'UPDATE' then
    if new.revision = old.revision then  -- approval or bookkeeping only: not a revision
      return null;
    end if;
    targets := private.subscribed_webhooks(new.company_id, 'PROCESS_REVISED');
    if targets is null then
      return null;
    end if;
    perform private.emit_process_event(new.company_id, 'PROCESS_REVISED', jsonb_build_object(
      'process_id', new.id,
      'revision', new.revision,
      'previous_revision', old.revision,
      'changed_fields', to_jsonb(private.process_changed_fields(old, new)),
      'process', private.process_event_data(new),
      'previous', new.carbon_copy), targets);
  else
    targets := private.subscribed_webhooks(old.company_id, 'PROCESS_DELETED');
    if targets is null then
      return null;
    end if;
    perform private.emit_process_event(old.company_id, 'PROCESS_DELETED', jsonb_build_object(
      'process_id', old.id,
      'revision', old.revision,
      'process', private.process_event_data(old)), targets);
  end if;
  return null;
end;
$$;

-- For the RPCs that create deliveries (test, redeliver, replay): refuses a disabled
-- endpoint. No lock: a disable that commits meanwhile is caught by the next claim.
create or replace function private.require_active(webhook public.webhooks)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  select * into webhook from public.webhooks w where w.id = webhook.id;
  if not webhook.is_active then
    raise exception 'webhook % is disabled (%)', webhook.id, coalesce(webhook.disabled_reason, 'no reason given')
      using errcode = '55000', hint = 'Enable it first: update webhooks set is_active = true.';
  end if;
end;
$$;

-- Foreign keys the business path no longer checks. Every check locks the row it points
-- at (FOR KEY SHARE): the event's trigger type is one row that every tenant's writes
-- pointed at, and the company row was locked once more per delivery and per attempt, so
-- concurrent writers (of any company, for the trigger type) piled their locks onto the
-- same rows (multixacts). These columns are written only by the outbox functions, which
-- validate them (enqueue_webhook_event checks the type; a delivery's and an attempt's
-- company is its event's and its delivery's), and deleting a company still removes
-- everything: its events cascade, their deliveries with them (event_id), their attempts
-- with those (delivery_id).
alter table public.webhook_events drop constraint webhook_events_trigger_type_fkey;
alter table public.webhook_deliveries drop constraint webhook_deliveries_company_id_fkey;
alter table public.webhook_delivery_attempts drop constraint webhook_delivery_attempts_company_id_fkey;

-- Signals: the business path's only mark for the dispatchers ------------------------------
-- One row per endpoint per statement that created deliveries for it. Inserting is all the
-- business path does; claims read them, take their endpoints into account and delete them.
create table private.webhook_endpoint_signals (
  id         bigint generated always as identity primary key,
  webhook_id uuid not null,
  created_at timestamptz not null default now()
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
comment on table private.webhook_endpoint_signals is
  'Endpoints that got new deliveries, for the next claim to schedule. Insert-only on the business path.';
create index webhook_endpoint_signals_webhook_idx on private.webhook_endpoint_signals (webhook_id);

-- Existing pending work becomes visible to the new claim.
insert into private.webhook_endpoint_signals (webhook_id)
select distinct d.webhook_id from public.webhook_deliveries d where d.state = 'pending' and d.webhook_id is not null;

-- Wake-ups -------------------------------------------------------------------------------
--
-- A dispatcher that is awake keeps claiming until nothing is due, so a transaction that
-- creates deliveries needs to wake one only when none is awake. "Awake" is a heartbeat in
-- a sequence (epoch milliseconds), because sequences are not transactional: every session
-- sees the latest value at once, and reading it takes no row lock.
--
-- No wake-up is missed. A dispatcher goes to sleep in three steps: it clears the heartbeat
-- (private.dispatcher_going_idle, which also returns the transactions in progress), waits
-- until those transactions have ended (private.transactions_ended), and looks for work
-- once more before it sleeps. A business transaction reads the heartbeat after inserting
-- its deliveries. If it read "awake", it was in progress when the heartbeat was cleared,
-- so the dispatcher waited for it and its deliveries are seen by that last look; if it
-- read "not awake", it wakes the dispatchers itself (NOTIFY at commit, pg_net on Supabase).
-- A heartbeat older than 2 s counts as asleep, so a dispatcher that died awake stops
-- suppressing wake-ups within 2 s.

create sequence private.webhook_dispatcher_heartbeat minvalue 0 start with 0;
comment on sequence private.webhook_dispatcher_heartbeat is
  'Epoch milliseconds of the last claim by an awake dispatcher; 0 when the last one went idle. Not transactional by design.';

create function private.dispatcher_is_awake()
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  return (select h.last_value > (extract(epoch from clock_timestamp()) * 1000)::bigint - 2000
            from private.webhook_dispatcher_heartbeat h);
end;
$$;

create function private.note_dispatcher_awake()
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  -- At most one write every 250 ms: the heartbeat only has to be younger than 2 s.
  perform pg_catalog.setval('private.webhook_dispatcher_heartbeat', (extract(epoch from clock_timestamp()) * 1000)::bigint)
     from private.webhook_dispatcher_heartbeat h
    where h.last_value < (extract(epoch from clock_timestamp()) * 1000)::bigint - 250;
end;
$$;

create function private.dispatcher_going_idle()
returns xid8[]
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  mine xid8;
  snapshot pg_catalog.pg_snapshot;
begin
  perform pg_catalog.setval('private.webhook_dispatcher_heartbeat', 0);
  -- Taken after the heartbeat is cleared: every transaction that could still have read
  -- "awake" has an xid below ours (a business transaction has its xid before it reads
  -- it) and is in this list. A snapshot lists in xip only the transactions in progress
  -- below its xmax (the newest completed xid + 1); the ones in progress from xmax on are
  -- implied, not listed, so they are added: every xid from xmax up to ours.
  mine := pg_catalog.pg_current_xact_id();
  snapshot := pg_catalog.pg_current_snapshot();
  return array(select x
                 from pg_catalog.pg_snapshot_xip(snapshot) x
                where x <> mine
               union all
               select n::text::xid8
                 from generate_series(pg_catalog.pg_snapshot_xmax(snapshot)::text::bigint, mine::text::bigint - 1) n);
end;
$$;
comment on function private.dispatcher_going_idle() is
  'Step 1 of going to sleep: clears the heartbeat and returns the transactions in progress. Wait for them (transactions_ended), look for work once more, then sleep.';

create function private.transactions_ended(xids xid8[])
returns boolean
language sql
volatile
security definer
set search_path = ''
as $$
  select coalesce(bool_and(pg_catalog.pg_xact_status(x) is distinct from 'in progress'), true)
    from unnest(xids) x
$$;

-- When the next claim could find work: now when a signal is waiting, else the earliest
-- ready_at. Null: nothing scheduled at all. A worker sleeps until then (or a NOTIFY).
create function private.next_dispatch_at()
returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
  select case when exists (select 1 from private.webhook_endpoint_signals) then now()
              else (select min(e.ready_at) from private.webhook_endpoints e where e.ready_at is not null)
         end
$$;

create or replace function private.tg_webhook_deliveries__wake_dispatchers()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.webhook_endpoint_signals (webhook_id)
  select distinct i.webhook_id from inserted i where i.webhook_id is not null;
  if not found then
    return null;
  end if;
  if not private.dispatcher_is_awake() then
    -- NOTIFY is delivered at commit and deduplicated within a transaction.
    perform pg_notify('webhook_deliveries', '');
    perform private.wake_dispatcher();
  end if;
  return null;
end;
$$;

-- The pg_cron tick: wakes the edge function while any endpoint has work due (a safety net
-- too: it does not trust the heartbeat).
create or replace function private.wake_dispatcher_if_due()
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if private.next_dispatch_at() <= now() then
    perform private.wake_dispatcher();
  end if;
end;
$$;

-- Endpoint rows follow the webhooks ----------------------------------------------------

create function private.tg_webhooks__track_endpoint()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.webhook_endpoints (webhook_id, company_id) values (new.id, new.company_id);
  return null;
end;
$$;

create trigger track_endpoint
  after insert on public.webhooks
  for each row execute function private.tg_webhooks__track_endpoint();

-- Scheduling ---------------------------------------------------------------------------

-- When a claim should next look at an endpoint, from the truth (its deliveries), not from
-- counters: a dispatcher that died leaves leases that simply run out.
--   * circuit open: the next probe time (not before the earliest due delivery), or, while
--     a probe is in flight, when its lease runs out;
--   * at its cap: when the earliest lease runs out (a record frees the slot sooner);
--   * otherwise: its earliest due (or lease-expiry) time; `served` endpoints with more
--     due work go to the back of the queue (now), behind endpoints that waited longer.
create function private.endpoint_ready_at(endpoint private.webhook_endpoints, served boolean)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  cap integer := (select s.endpoint_concurrency from private.webhook_settings s);
  in_flight integer;
  first_expiry timestamptz;
  earliest timestamptz;
begin
  select count(*)::integer, min(d.lease_expires_at) into in_flight, first_expiry
    from public.webhook_deliveries d
   where d.webhook_id = endpoint.webhook_id
     and d.state = 'pending'
     and d.lease_owner is not null
     and d.lease_expires_at > now();

  -- 'infinity' marks an ordered delivery held behind an earlier one of its key.
  select min(d.next_attempt_at) into earliest
    from public.webhook_deliveries d
   where d.webhook_id = endpoint.webhook_id
     and d.state = 'pending'
     and d.next_attempt_at < 'infinity';

  if earliest is null then
    return null;
  elsif endpoint.circuit_opened_at is not null then
    return case when in_flight > 0 then first_expiry else greatest(endpoint.next_probe_at, earliest) end;
  elsif in_flight >= cap then
    return first_expiry;
  elsif served and earliest <= now() then
    return now();
  else
    return earliest;
  end if;
end;
$$;

-- Deliveries of an endpoint that is disabled or deleted end cancelled, never dropped.
-- Callers hold the endpoint's row (lock order: endpoint, then deliveries).
create or replace function private.cancel_pending_deliveries(webhook_id uuid, reason text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  update public.webhook_deliveries d
     set state = 'cancelled',
         next_attempt_at = null,
         completed_at = now(),
         lease_owner = null,
         lease_expires_at = null,
         last_error = reason
   where d.webhook_id = cancel_pending_deliveries.webhook_id
     and d.state = 'pending';
  update private.webhook_endpoints e
     set ready_at = null
   where e.webhook_id = cancel_pending_deliveries.webhook_id;
$$;

create or replace function private.tg_webhooks__cancel_pending_deliveries()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    -- When the whole company is being deleted its deliveries go with it (cascade);
    -- updating them here would trip the company foreign key.
    if exists (select 1 from public.companies c where c.id = old.company_id) then
      perform 1 from private.webhook_endpoints e where e.webhook_id = old.id for update;
      perform private.cancel_pending_deliveries(old.id, 'endpoint deleted');
    end if;
    return old;
  end if;
  if old.is_active and not new.is_active then
    perform 1 from private.webhook_endpoints e where e.webhook_id = new.id for update;
    perform private.cancel_pending_deliveries(new.id, 'endpoint disabled: ' || coalesce(new.disabled_reason, 'no reason given'));
  elsif new.is_active and not old.is_active then
    -- Enabled again: a fresh start, as the ADMIN expects.
    update private.webhook_endpoints e
       set consecutive_failures = 0, failing_since = null,
           circuit_opened_at = null, probe_interval_seconds = null, next_probe_at = null
     where e.webhook_id = new.id;
  end if;
  return null;
end;
$$;

-- The guard no longer clears health on re-enable (the trigger above does, in the
-- endpoint's own row); otherwise it is the guard of 20261126100400.
create or replace function private.tg_webhooks__guard_row()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and new.company_id is distinct from old.company_id then
    raise exception 'a webhook cannot move to another company'
      using errcode = '42501', hint = 'Delete it and create it in the other company.';
  end if;

  -- Re-enabling an endpoint clears the reason it was disabled for.
  if new.is_active and (tg_op = 'INSERT' or not old.is_active) then
    new.disabled_reason := null;
    new.disabled_at := null;
  elsif not new.is_active and (tg_op = 'INSERT' or old.is_active) then
    new.disabled_at := now();
    new.disabled_reason := coalesce(new.disabled_reason, 'disabled by an admin');
  end if;
  return new;
end;
$$;

-- The claim ------------------------------------------------------------------------------

drop function private.claim_due_deliveries(text, integer, integer, integer);

-- What a claim hands a dispatcher for each delivery.
create type private.claimed_delivery as (
  delivery_id      uuid,
  event_id         uuid,
  webhook_id       uuid,
  company_id       uuid,
  url              text,
  payload          jsonb,
  attempt_number   integer,
  secrets          text[],
  event_created_at timestamptz
);

create function private.claim_due_deliveries(worker text, batch_size integer, lease_seconds integer)
returns setof private.claimed_delivery
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  cap integer := (select s.endpoint_concurrency from private.webhook_settings s);
  candidates uuid[];
  picked uuid[];
  endpoint private.webhook_endpoints;
  hook public.webhooks;
  in_flight integer;
  take integer;
  due uuid[];
  heads uuid[];
  claimed uuid[] := '{}'::uuid[];
  served boolean;
  orphaned boolean;
begin
  if worker is null or btrim(worker) = '' then
    raise exception 'worker must name the dispatcher that claims the work' using errcode = '22023';
  end if;
  if batch_size is null or batch_size not between 1 and 1000 then
    raise exception 'batch_size must be between 1 and 1000, got %', batch_size using errcode = '22023';
  end if;
  if lease_seconds is null or lease_seconds not between 1 and 3600 then
    raise exception 'lease_seconds must be between 1 and 3600, got %', lease_seconds using errcode = '22023';
  end if;

  -- Endpoints to look at, longest waiting first: those whose ready_at has come, and those
  -- with new deliveries (signals). Only these are visited: endpoints waiting on a later
  -- retry, at their cap or with an open circuit cost nothing here.
  select array_agg(c.webhook_id order by c.since, c.webhook_id) into candidates
    from (select u.webhook_id, min(u.since) as since
            from ((select e.webhook_id, e.ready_at as since
                     from private.webhook_endpoints e
                    where e.ready_at <= now()
                    order by e.ready_at
                    limit batch_size)
                  union all
                  (select s.webhook_id, s.created_at
                     from private.webhook_endpoint_signals s
                    order by s.id
                    limit batch_size * 4)) u
           group by u.webhook_id
           order by min(u.since), u.webhook_id
           limit batch_size) c;
  if candidates is null then
    return;
  end if;

  -- Another claim holding an endpoint has it in hand: skip it rather than wait.
  select array_agg(e.webhook_id order by array_position(candidates, e.webhook_id)) into picked
    from (select e.webhook_id
            from private.webhook_endpoints e
           where e.webhook_id = any (candidates)
             for update skip locked) e;

  -- Everything the picked endpoints' signals announced is read from the deliveries below.
  -- A signal of an endpoint that no longer exists announced deliveries that a transaction
  -- committed while the endpoint was being deleted (the delete's cancel could not see
  -- them, and the foreign key then cleared their webhook_id): they end cancelled here.
  with gone as (
    delete from private.webhook_endpoint_signals s
     where s.webhook_id = any (candidates)
       and (s.webhook_id = any (coalesce(picked, '{}'))
            or not exists (select 1 from private.webhook_endpoints e where e.webhook_id = s.webhook_id))
    returning s.webhook_id
  )
  select bool_or(not g.webhook_id = any (coalesce(picked, '{}'))) into orphaned from gone g;
  if orphaned then
    update public.webhook_deliveries d
       set state = 'cancelled', next_attempt_at = null, completed_at = now(),
           lease_owner = null, lease_expires_at = null, last_error = 'endpoint deleted'
     where d.state = 'pending' and d.webhook_id is null;
  end if;
  if picked is null then
    return;
  end if;

  foreach endpoint.webhook_id in array picked loop
    select * into endpoint from private.webhook_endpoints e where e.webhook_id = endpoint.webhook_id;
    select * into hook from public.webhooks w where w.id = endpoint.webhook_id;
    served := false;

    if not hook.is_active then
      -- Disabled while a transaction was creating deliveries for it: they end here.
      perform private.cancel_pending_deliveries(hook.id, 'endpoint disabled: ' || coalesce(hook.disabled_reason, 'no reason given'));
      continue;
    end if;

    if cardinality(claimed) < batch_size then
      select count(*)::integer into in_flight
        from public.webhook_deliveries d
       where d.webhook_id = endpoint.webhook_id
         and d.state = 'pending'
         and d.lease_owner is not null
         and d.lease_expires_at > now();
      take := case
                when endpoint.circuit_opened_at is null then cap - in_flight
                when endpoint.next_probe_at <= now() and in_flight = 0 then 1  -- the probe
                else 0
              end;
      take := least(take, batch_size - cardinality(claimed));

      while take > 0 loop
        -- The endpoint's oldest due deliveries. An ordered delivery goes only when it is
        -- the earliest pending one of its key and no other of its key is in flight (one
        -- with a later number whose transaction committed first); the others found due are
        -- parked ('infinity') until the one before them ends, so they are read once, not at
        -- every claim.
        due := array(select d.id
                       from public.webhook_deliveries d
                      where d.webhook_id = endpoint.webhook_id
                        and d.state = 'pending'
                        and d.next_attempt_at <= now()
                      order by d.next_attempt_at
                      limit take);
        exit when cardinality(due) = 0;
        heads := array(select d.id
                         from public.webhook_deliveries d
                        where d.id = any (due)
                          and (d.ordering_key is null
                               or (not exists (select 1
                                                 from public.webhook_deliveries p
                                                where p.webhook_id = d.webhook_id
                                                  and p.ordering_key = d.ordering_key
                                                  and p.state = 'pending'
                                                  and p.ordering_seq < d.ordering_seq)
                                   and not exists (select 1
                                                     from public.webhook_deliveries f
                                                    where f.webhook_id = d.webhook_id
                                                      and f.state = 'pending'
                                                      and f.lease_owner is not null
                                                      and f.lease_expires_at > now()
                                                      and f.ordering_key = d.ordering_key
                                                      and f.id <> d.id))));
        if cardinality(heads) < cardinality(due) then
          update public.webhook_deliveries d
             set next_attempt_at = 'infinity'
           where d.id = any (due) and not d.id = any (heads);
        end if;

        -- SKIP LOCKED: a row someone else holds (an ADMIN cancelling it) is left for later.
        with picked_rows as (
          select d.id
            from public.webhook_deliveries d
           where d.id = any (heads)
             and d.state = 'pending'
             and d.next_attempt_at <= now()
             for update of d skip locked
        ), leased as (
          update public.webhook_deliveries d
             set attempt_count    = d.attempt_count + 1,
                 lease_owner      = worker,
                 lease_expires_at = now() + make_interval(secs => lease_seconds),
                 -- An expired lease makes the delivery due again with no janitor.
                 next_attempt_at  = now() + make_interval(secs => lease_seconds),
                 last_attempt_at  = now()
            from picked_rows
           where d.id = picked_rows.id
          returning d.id
        )
        select claimed || coalesce(array_agg(leased.id), '{}') into claimed from leased;

        served := served or cardinality(heads) > 0;
        take := least(take - cardinality(heads), batch_size - cardinality(claimed));
        -- Fewer due rows than asked for: nothing more is due now.
        exit when cardinality(due) < take + cardinality(heads);
      end loop;
    end if;

    update private.webhook_endpoints e
       set ready_at = private.endpoint_ready_at(e, served)
     where e.webhook_id = endpoint.webhook_id;
  end loop;

  -- Found work: this dispatcher will claim again soon, so committing transactions need
  -- not wake anyone. A claim that finds nothing says nothing (its dispatcher may be
  -- about to sleep).
  if cardinality(claimed) > 0 then
    perform private.note_dispatcher_awake();
  end if;

  return query
  select d.id, d.event_id, d.webhook_id, d.company_id, w.url, ev.payload, d.attempt_count,
         private.webhook_signing_secrets(d.webhook_id), ev.created_at
    from public.webhook_deliveries d
    join public.webhook_events ev on ev.id = d.event_id
    join public.webhooks w on w.id = d.webhook_id
   where d.id = any (claimed);
end;
$$;
comment on function private.claim_due_deliveries(text, integer, integer) is
  'Leases up to batch_size due deliveries to worker for lease_seconds, endpoint by endpoint (longest waiting first), never past an endpoint''s cap or open circuit. attempt_number is the attempt about to be made.';

-- Recording results ------------------------------------------------------------------------

drop function private.record_delivery_results(text, jsonb, interval);

create function private.record_delivery_results(worker text, results jsonb, disable_after interval)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  settings private.webhook_settings;
  ids uuid[];
  moved jsonb;
  applied integer;
begin
  if jsonb_typeof(results) is distinct from 'array' then
    raise exception 'results must be a JSON array of attempt results' using errcode = '22023';
  end if;
  if disable_after is null or disable_after <= interval '0' then
    raise exception 'disable_after must be a positive interval, got %', coalesce(disable_after::text, 'null')
      using errcode = '22023';
  end if;
  select * into settings from private.webhook_settings;
  -- The deliveries are reached by primary key (= any): joined to the results as a set,
  -- a small outbox's statistics made the planner scan the whole table on every call.
  ids := array(select (r ->> 'delivery_id')::uuid from jsonb_array_elements(results) r);

  -- Lock order: the endpoints' rows (in id order), then their deliveries; as claims,
  -- releases and cancels do. Never the webhooks rows: those are the ADMINs'.
  perform 1
     from private.webhook_endpoints e
    where e.webhook_id in (select d.webhook_id
                             from public.webhook_deliveries d
                            where d.id = any (ids))
    order by e.webhook_id
      for update;

  -- Every attempt is logged, even one whose lease was lost meanwhile: it happened.
  insert into public.webhook_delivery_attempts
         (delivery_id, company_id, attempt_number, outcome, status, duration_ms, response_body, error, worker)
  select r.delivery_id, d.company_id, r.attempt_number, r.outcome, r.status, r.duration_ms,
         left(r.response_body, 4096), left(r.error, 2000), worker
    from jsonb_to_recordset(results) as r(delivery_id uuid, attempt_number integer, outcome public.webhook_attempt_outcome,
                                           status integer, duration_ms integer, response_body text,
                                           error text)
    join public.webhook_deliveries d on d.id = r.delivery_id
   where d.id = any (ids);

  -- The delivery moves only if this worker still holds the lease for this attempt.
  with r as (
    select *
      from rows from (jsonb_to_recordset(results)
                        as (delivery_id uuid, attempt_number integer, outcome public.webhook_attempt_outcome, status integer, error text,
                            next_attempt_at timestamptz, gone boolean))
           with ordinality as r(delivery_id, attempt_number, outcome, status, error, next_attempt_at, gone, position)
  ), moved_rows as (
    update public.webhook_deliveries d
       set state            = case when r.outcome = 'succeeded' then 'succeeded'::public.webhook_delivery_state
                                   when r.next_attempt_at is null then 'failed'::public.webhook_delivery_state
                                   else 'pending'::public.webhook_delivery_state end,
           next_attempt_at  = case when r.outcome <> 'succeeded' then r.next_attempt_at end,
           completed_at     = case when r.outcome = 'succeeded' or r.next_attempt_at is null then now() end,
           lease_owner      = null,
           lease_expires_at = null,
           last_status      = r.status,
           last_error       = left(r.error, 2000)
      from r
     where d.id = r.delivery_id
       and d.id = any (ids)
       and d.state = 'pending'
       and d.lease_owner = worker
       and d.attempt_count = r.attempt_number
    returning d.webhook_id, d.ordering_key, d.state, r.outcome, r.status, left(r.error, 2000) as error,
              coalesce(r.gone, false) as gone, r.position, d.last_attempt_at as claimed_at
  )
  select count(*)::integer, coalesce(jsonb_agg(to_jsonb(m) order by m.position), '[]')
    into applied, moved
    from moved_rows m;

  -- Ordered keys whose delivery ended: the next one of the key goes next.
  if moved @? '$[*] ? (@.ordering_key != null && @.state != "pending")' then
  update public.webhook_deliveries d
     set next_attempt_at = now()
   where d.id in (select distinct on (n.webhook_id, n.ordering_key) n.id
                    from public.webhook_deliveries n
                    join (select distinct (m ->> 'webhook_id')::uuid as webhook_id, m ->> 'ordering_key' as ordering_key
                            from jsonb_array_elements(moved) m
                           where m ->> 'ordering_key' is not null
                             and m ->> 'state' <> 'pending') ended
                      on n.webhook_id = ended.webhook_id and n.ordering_key = ended.ordering_key
                   where n.state = 'pending'
                   order by n.webhook_id, n.ordering_key, n.ordering_seq)
     and d.next_attempt_at = 'infinity';
  end if;

  -- Endpoint health. A success closes everything; so does any answer that is not a 5xx
  -- (the endpoint is up, it just refused). No answer, a timeout or a 5xx extends the run
  -- of consecutive failures; at the threshold the circuit opens, and each failed probe
  -- doubles the wait before the next one (up to the maximum).
  with per_endpoint as (
    select (m ->> 'webhook_id')::uuid as webhook_id,
           bool_or(m ->> 'outcome' = 'succeeded') as succeeded,
           count(*) filter (where m ->> 'outcome' = 'failed'
                              and coalesce((m ->> 'status')::integer, 599) >= 500)::integer as breaking,
           bool_or(m ->> 'outcome' = 'failed' and (m ->> 'status')::integer < 500) as answered,
           bool_or(m ->> 'outcome' <> 'succeeded') as any_failure,
           (array_agg(m ->> 'status' order by (m ->> 'position')::bigint desc))[1]::integer as last_status,
           (array_agg(m ->> 'error' order by (m ->> 'position')::bigint desc))[1] as last_error,
           max((m ->> 'claimed_at')::timestamptz) filter (where m ->> 'outcome' = 'failed'
                                                            and coalesce((m ->> 'status')::integer, 599) >= 500) as last_breaking_claim
      from jsonb_array_elements(moved) m
     group by 1
  ), counted as (
    select p.*,
           case when p.succeeded or (p.answered and p.breaking = 0) then 0
                else e.consecutive_failures + p.breaking end as failures,
           -- A probe is a request claimed while the circuit was open; the ones already in
           -- flight when it opened are not, and their failures must not push the next probe.
           coalesce(p.last_breaking_claim > e.circuit_opened_at, false) as probe_failed
      from per_endpoint p
      join private.webhook_endpoints e on e.webhook_id = p.webhook_id
  )
  update private.webhook_endpoints e
     set consecutive_failures   = c.failures,
         failing_since          = case when c.succeeded then null
                                       when c.any_failure then coalesce(e.failing_since, now())
                                       else e.failing_since end,
         circuit_opened_at      = case when c.failures = 0 then null
                                       when e.circuit_opened_at is null and c.failures >= settings.circuit_failure_threshold then now()
                                       else e.circuit_opened_at end,
         probe_interval_seconds = case when c.failures = 0 then null
                                       when e.circuit_opened_at is null and c.failures >= settings.circuit_failure_threshold
                                         then settings.circuit_probe_min_seconds
                                       when c.probe_failed
                                         then least(e.probe_interval_seconds * 2, settings.circuit_probe_max_seconds)
                                       else e.probe_interval_seconds end,
         next_probe_at          = case when c.failures = 0 then null
                                       when e.circuit_opened_at is null and c.failures >= settings.circuit_failure_threshold
                                         then now() + make_interval(secs => settings.circuit_probe_min_seconds)
                                       when c.probe_failed
                                         then now() + make_interval(secs => least(e.probe_interval_seconds * 2, settings.circuit_probe_max_seconds))
                                       else e.next_probe_at end,
         last_status            = c.last_status,
         last_error             = case when c.succeeded then null else c.last_error end,
         last_attempt_at        = now(),
         last_success_at        = case when c.succeeded then now() else e.last_success_at end
    from counted c
   where e.webhook_id = c.webhook_id;

  -- Freed slots (and promoted keys) make the endpoints ready again.
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, false)
   where e.webhook_id in (select distinct (m ->> 'webhook_id')::uuid from jsonb_array_elements(moved) m);

  -- 410 Gone disables at once; failing longer than disable_after disables with a reason
  -- (pending work is cancelled by the webhooks trigger). The only write the dispatcher
  -- makes to a webhooks row; a row an ADMIN holds is left for the next failure.
  if moved @? '$[*] ? (@.outcome != "succeeded")' then
  update public.webhooks w
     set is_active = false,
         disabled_reason = case when f.gone then 'the endpoint answered 410 Gone'
                                else format('failing continuously since %s (longer than %s)', f.failing_since, disable_after) end
    from (select e.webhook_id, e.failing_since,
                 exists (select 1 from jsonb_array_elements(moved) m
                          where (m ->> 'webhook_id')::uuid = e.webhook_id and (m ->> 'gone')::boolean) as gone
            from private.webhook_endpoints e
           where e.webhook_id in (select distinct (m ->> 'webhook_id')::uuid from jsonb_array_elements(moved) m)) f
   where w.id = f.webhook_id
     and (f.gone or f.failing_since < now() - disable_after)
     and w.id in (select l.id from public.webhooks l where l.id = f.webhook_id and l.is_active
                     for no key update skip locked);
  end if;

  return applied;
end;
$$;
comment on function private.record_delivery_results(text, jsonb, interval) is
  'Records a batch of attempt results in one call: logs every attempt, closes or reschedules each delivery still leased to worker, releases the next delivery of an ordered key, and keeps endpoint health and the circuit breaker. Returns how many deliveries moved.';

-- A dispatcher's usual round trip: record what finished and claim what is due, in one
-- call. Recording frees the endpoints' slots, so the same call can fill them again: a
-- busy endpoint's requests follow each other without a second round trip in between.
create function private.record_and_claim(
  worker text,
  results jsonb,
  disable_after interval,
  batch_size integer,
  lease_seconds integer
)
returns setof private.claimed_delivery
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.record_delivery_results(worker, results, disable_after);
  return query select * from private.claim_due_deliveries(worker, batch_size, lease_seconds);
end;
$$;
comment on function private.record_and_claim(text, jsonb, interval, integer, integer) is
  'record_delivery_results, then claim_due_deliveries, in one call and one transaction.';

create or replace function private.release_deliveries(worker text, delivery_ids uuid[])
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  released integer;
begin
  perform 1
     from private.webhook_endpoints e
    where e.webhook_id in (select d.webhook_id from public.webhook_deliveries d where d.id = any (delivery_ids))
    order by e.webhook_id
      for update;
  -- Graceful shutdown: the attempts never started, so they are not counted.
  update public.webhook_deliveries d
     set next_attempt_at  = now(),
         lease_owner      = null,
         lease_expires_at = null,
         attempt_count    = d.attempt_count - 1
   where d.id = any (delivery_ids)
     and d.state = 'pending'
     and d.lease_owner = worker;
  get diagnostics released = row_count;
  update private.webhook_endpoints e
     set ready_at = private.endpoint_ready_at(e, false)
   where e.webhook_id in (select d.webhook_id from public.webhook_deliveries d where d.id = any (delivery_ids));
  return released;
end;
$$;

-- Closed to PUBLIC like every private function; only the dispatcher's service role calls in.
revoke execute on function private.dispatcher_is_awake(), private.note_dispatcher_awake(),
                           private.dispatcher_going_idle(), private.transactions_ended(xid8[]),
                           private.next_dispatch_at(), private.tg_webhooks__track_endpoint(),
                           private.endpoint_ready_at(private.webhook_endpoints, boolean),
                           private.claim_due_deliveries(text, integer, integer),
                           private.record_delivery_results(text, jsonb, interval),
                           private.record_and_claim(text, jsonb, interval, integer, integer)
  from public;
grant execute on function private.claim_due_deliveries(text, integer, integer),
                          private.record_delivery_results(text, jsonb, interval),
                          private.record_and_claim(text, jsonb, interval, integer, integer),
                          private.dispatcher_going_idle(),
                          private.transactions_ended(xid8[]),
                          private.next_dispatch_at()
  to service_role;

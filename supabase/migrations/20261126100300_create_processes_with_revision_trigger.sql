-- Processes (Serial's manufacturing process definitions), update_process_revision, and the
-- row-level security of processes. Their webhook events are emitted by a trigger that lives
-- with the other process events (..._emit_process_events), after the outbox it writes to.
--
-- Revision semantics (the Serial docs leave them open; README "Process revisions"):
--   * A process starts at revision 1 with no carbon copy and unapproved.
--   * An UPDATE that changes a definition column (anything except the approval fields and
--     bookkeeping) bumps revision by exactly one, stores the previous version as a jsonb
--     snapshot in carbon_copy (without its own carbon_copy, so snapshots never nest) and
--     resets approval.
--   * An UPDATE that changes nothing, or only approval fields, keeps the revision.
--   * Approving through the API records the approver (auth.uid()) and the time.
--   * revision and carbon_copy are owned by the trigger: values sent by clients are ignored.
--   * A process never moves to another company.

create table public.processes (
  id                    uuid primary key default gen_random_uuid(),
  company_id            uuid not null references public.companies (id) on delete cascade,
  name                  text not null constraint processes_name_not_blank check (btrim(name) <> ''),
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now(),
  use_api               boolean not null default false,
  record_operator       boolean not null default false,
  is_mandatory          boolean not null default false,
  break_prior_links     boolean not null default false,
  dependent_process_ids uuid[] not null default '{}',
  type                  text not null default 'PRODUCTION'
                        constraint processes_type_upper_snake check (type ~ '^[A-Z][A-Z0-9_]*$'),
  revision              bigint not null default 1,
  carbon_copy           jsonb,
  revision_description  text,
  created_by_user_id    uuid references public.users (supabase_uid) on delete set null,
  allow_batch           boolean not null default false,
  approved              boolean not null default false,
  approved_by_user_id   uuid references public.users (supabase_uid) on delete set null,
  approved_at           timestamptz,
  show_media_numbering  boolean not null default false
);
comment on table public.processes is
  'Manufacturing process definitions. Editing a definition column creates a new revision (update_process_revision).';
comment on column public.processes.carbon_copy is
  'Snapshot of the previous revision (jsonb of the whole row minus its own carbon_copy), set by update_process_revision.';
create index processes_company_id_idx on public.processes (company_id);
-- Deleting a user sets these to null: without an index that scans every process.
create index processes_created_by_user_id_idx on public.processes (created_by_user_id) where created_by_user_id is not null;
create index processes_approved_by_user_id_idx on public.processes (approved_by_user_id) where approved_by_user_id is not null;

-- Columns whose change is not a new revision of the definition.
create function private.process_non_definition_columns()
returns text[]
language sql
immutable
set search_path = ''
as $$
  select array['id', 'company_id', 'created_at', 'created_by_user_id', 'updated_at',
               'revision', 'carbon_copy', 'approved', 'approved_by_user_id', 'approved_at']
$$;

-- The definition columns that differ between two versions of a process, sorted.
create function private.process_changed_fields(old_row public.processes, new_row public.processes)
returns text[]
language sql
immutable
set search_path = ''
as $$
  select coalesce(array_agg(n.key order by n.key), '{}')
    from jsonb_each(to_jsonb(new_row)) n
    join jsonb_each(to_jsonb(old_row)) o using (key)
   where n.value is distinct from o.value
     and n.key <> all (private.process_non_definition_columns())
$$;

create function private.tg_processes__start_at_revision_one()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.revision := 1;
  new.carbon_copy := null;
  -- An API user creates processes as themself.
  new.created_by_user_id := coalesce(auth.uid(), new.created_by_user_id);
  new.approved := false;
  new.approved_by_user_id := null;
  new.approved_at := null;
  return new;
end;
$$;

create trigger start_at_revision_one
  before insert on public.processes
  for each row execute function private.tg_processes__start_at_revision_one();

create function private.update_process_revision()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.company_id is distinct from old.company_id then
    raise exception 'a process cannot move to another company'
      using errcode = '42501',
            hint = 'Create the process in the other company instead.';
  end if;

  -- Owned by this trigger, whatever the client sent.
  new.revision := old.revision;
  new.carbon_copy := old.carbon_copy;
  new.created_at := old.created_at;
  -- Authorship can only be cleared (ON DELETE SET NULL when that user is deleted),
  -- never handed to someone else.
  if new.created_by_user_id is not null then
    new.created_by_user_id := old.created_by_user_id;
  end if;

  -- Approval is recorded as who approved and when, not as whatever a client claims.
  if not new.approved then
    new.approved_by_user_id := null;
    new.approved_at := null;
  elsif not old.approved then
    if auth.uid() is not null then  -- an API user approves as themself, now
      new.approved_by_user_id := auth.uid();
      new.approved_at := now();
    end if;
  else  -- still approved: the record stands (the approver may only be cleared)
    if new.approved_by_user_id is not null then
      new.approved_by_user_id := old.approved_by_user_id;
    end if;
    new.approved_at := old.approved_at;
  end if;

  if cardinality(private.process_changed_fields(old, new)) > 0 then
    new.revision := old.revision + 1;
    new.carbon_copy := to_jsonb(old) - 'carbon_copy';
    new.approved := false;
    new.approved_by_user_id := null;
    new.approved_at := null;
  end if;

  if to_jsonb(new) - 'updated_at' is distinct from to_jsonb(old) - 'updated_at' then
    new.updated_at := now();
  else
    new.updated_at := old.updated_at;
  end if;
  return new;
end;
$$;
comment on function private.update_process_revision() is
  'BEFORE UPDATE on processes: bumps revision, snapshots the previous version into carbon_copy and resets approval when a definition column changes.';

create trigger update_process_revision
  before update on public.processes
  for each row execute function private.update_process_revision();

revoke execute on function private.process_non_definition_columns(),
                           private.process_changed_fields(public.processes, public.processes),
                           private.tg_processes__start_at_revision_one(),
                           private.update_process_revision()
  from public;
-- update_process_revision runs as the user editing the process.
grant execute on function private.process_non_definition_columns(),
                          private.process_changed_fields(public.processes, public.processes)
  to authenticated;

-- Row-level security: members read; admins create, edit and delete. Column grants make the
-- writable surface explicit: revision, carbon_copy and the bookkeeping are trigger-owned, and
-- company_id is written only on insert.
alter table public.processes enable row level security;
revoke all on public.processes from anon, authenticated;
grant select, delete on public.processes to authenticated;
grant insert (company_id, name, use_api, record_operator, is_mandatory, break_prior_links,
              dependent_process_ids, type, revision_description, created_by_user_id, allow_batch,
              show_media_numbering)
  on public.processes to authenticated;
grant update (name, use_api, record_operator, is_mandatory, break_prior_links, dependent_process_ids,
              type, revision_description, allow_batch, approved, approved_by_user_id, approved_at,
              show_media_numbering)
  on public.processes to authenticated;
create policy "Members can view their company's processes"
  on public.processes for select to authenticated
  using (company_id = (select private.member_company_id()));
create policy "Admins can create processes in their company"
  on public.processes for insert to authenticated
  with check (company_id = (select private.admin_company_id()));
create policy "Admins can edit their company's processes"
  on public.processes for update to authenticated
  using (company_id = (select private.admin_company_id()))
  with check (company_id = (select private.admin_company_id()));
create policy "Admins can delete their company's processes"
  on public.processes for delete to authenticated
  using (company_id = (select private.admin_company_id()));

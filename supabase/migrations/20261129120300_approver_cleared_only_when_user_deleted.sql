-- Who approved a process stays recorded while it stays approved: nobody may clear
-- approved_by_user_id by hand (an ADMIN could, and approved/approved_at stayed). It is
-- cleared only when that user is deleted (ON DELETE SET NULL), which
-- update_process_revision now tells apart by the approver no longer existing. Setting
-- approved = false (or a new revision) still clears the approval.

-- security definer: whether the approver still exists must not depend on which users the
-- caller's RLS shows (an approver who moved to another company is still a user).
create function private.user_exists(user_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (select 1 from public.users u where u.supabase_uid = user_exists.user_id);
end;
$$;
revoke execute on function private.user_exists(uuid) from public, anon;
-- update_process_revision runs as the user (or service) editing the process.
grant execute on function private.user_exists(uuid) to authenticated, service_role;

create or replace function private.update_process_revision()
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
  else  -- still approved: the record stands; the approver is cleared only when that
        -- user is deleted (ON DELETE SET NULL), never by hand
    if new.approved_by_user_id is not null or private.user_exists(old.approved_by_user_id) then
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

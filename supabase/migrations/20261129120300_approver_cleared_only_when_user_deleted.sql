-- Who approved a process stays recorded while it stays approved: nobody may clear
-- approved_by_user_id by hand. It is cleared only when that user is deleted
-- (ON DELETE SET NULL), which this trigger tells apart by the approver's users row no
-- longer existing. Setting approved = false (or a new revision) still clears the approval.
--
-- Its own trigger, named to sort before update_process_revision (same-event triggers run
-- in name order): it puts the approver back, and update_process_revision then keeps it
-- like any other attempt to change a standing approval.

-- security definer: whether the approver still exists must not depend on which users the
-- caller's RLS shows (an approver who moved to another company is still a user).
create function private.tg_processes__keep_approver_until_user_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.approved and new.approved
     and old.approved_by_user_id is not null and new.approved_by_user_id is null then
    if exists (select 1 from public.users u where u.supabase_uid = old.approved_by_user_id) then
      new.approved_by_user_id := old.approved_by_user_id;
    end if;
  end if;
  return new;
end;
$$;
revoke execute on function private.tg_processes__keep_approver_until_user_deleted() from public, anon, authenticated;

create trigger keep_approver_until_user_deleted
  before update of approved_by_user_id on public.processes
  for each row execute function private.tg_processes__keep_approver_until_user_deleted();

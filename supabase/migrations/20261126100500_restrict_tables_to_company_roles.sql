-- Row-level security and grants for the core tables.
--
-- Every policy compares company_id with a helper wrapped in (select ...): Postgres runs
-- it once per statement. anon gets nothing anywhere. service_role bypasses RLS (Supabase).
-- Column grants make the writable surface explicit: an admin can never write company_id
-- on update, nor the disable bookkeeping the dispatcher owns.

alter table public.companies enable row level security;
alter table public.user_types enable row level security;
alter table public.users enable row level security;
alter table public.processes enable row level security;
alter table public.webhook_trigger_types enable row level security;
alter table public.webhooks enable row level security;

revoke all on public.companies, public.user_types, public.users, public.processes,
              public.webhook_trigger_types, public.webhooks
  from anon, authenticated;

-- companies: members read their own company.
grant select on public.companies to authenticated;
create policy "Members can view their own company"
  on public.companies for select to authenticated
  using (id = (select private.member_company_id()));

-- user_types and webhook_trigger_types: catalogues every signed-in user may read.
grant select on public.user_types, public.webhook_trigger_types to authenticated;
create policy "Signed-in users can view the role catalogue"
  on public.user_types for select to authenticated
  using (true);
create policy "Signed-in users can view webhook trigger types"
  on public.webhook_trigger_types for select to authenticated
  using (true);

-- users: everyone reads their own row; admins read their company's users.
grant select on public.users to authenticated;
-- One policy, not two: Postgres would evaluate every permissive policy for each row.
create policy "Users can view their own profile, admins their company's users"
  on public.users for select to authenticated
  using (supabase_uid = (select auth.uid()) or company_id = (select private.admin_company_id()));

-- processes: members read; admins create, edit and delete (revision/carbon_copy are trigger-owned).
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

-- webhooks: only an active ADMIN of the company, for every operation.
grant select, delete on public.webhooks to authenticated;
grant insert (id, company_id, trigger_type, url, is_active, description) on public.webhooks to authenticated;
grant update (trigger_type, url, is_active, description) on public.webhooks to authenticated;
create policy "Admins can view their company's webhooks"
  on public.webhooks for select to authenticated
  using (company_id = (select private.admin_company_id()));
create policy "Admins can create webhooks in their company"
  on public.webhooks for insert to authenticated
  with check (company_id = (select private.admin_company_id()));
create policy "Admins can edit their company's webhooks"
  on public.webhooks for update to authenticated
  using (company_id = (select private.admin_company_id()))
  with check (company_id = (select private.admin_company_id()));
create policy "Admins can delete their company's webhooks"
  on public.webhooks for delete to authenticated
  using (company_id = (select private.admin_company_id()));

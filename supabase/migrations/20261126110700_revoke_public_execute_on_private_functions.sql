-- Close every private function to PUBLIC, then reopen exactly what API roles need.
--
-- Postgres grants EXECUTE on new functions to PUBLIC, and `alter default privileges in
-- schema ...` cannot take that away (PUBLIC's default is global), so without this any
-- signed-in SQL session could call claim_due_deliveries and read every company's
-- payloads and secrets. A pgTAP test fails if a later private function is left open.

revoke execute on all functions in schema private from public, anon, authenticated;

-- Policies call these as the requesting user.
grant execute on function private.member_company_id(),
                          private.admin_company_id(),
                          private.is_company_admin(uuid),
                          private.can_manage_company(uuid)
  to authenticated;

-- update_process_revision runs as the user editing the process.
grant execute on function private.process_non_definition_columns(),
                          private.process_changed_fields(public.processes, public.processes)
  to authenticated;

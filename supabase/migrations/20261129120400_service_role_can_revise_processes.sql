-- The service role (trusted backends, Supabase's own tools) can update processes.
--
-- update_process_revision runs with the caller's rights and calls private helpers; two of
-- them only authenticated could execute (user_exists, of 20261129120300, already grants
-- service_role), so every update by the service role through
-- PostgREST failed with "permission denied for function process_changed_fields".
-- (pgTAP did not see it: plpgsql caches a checked expression for the rest of the
-- transaction, so an earlier update as authenticated hid the missing privilege.)

grant execute on function private.process_non_definition_columns(),
                          private.process_changed_fields(public.processes, public.processes)
  to service_role;

-- The deployment's settings row can be changed, never deleted.
--
-- Every reader of private.webhook_settings assumes its one row. Without it the checks
-- that read it fail open, not closed: `not (select allow_plain_http ...)` and
-- `(select hosted ...)` are null, so the webhooks triggers let plain http:// urls and ports
-- 25/587 in; the endpoint cap (private.endpoint_concurrency: least() skips nulls) loses
-- the deployment's bound. Only the owner can delete it (the table is private and granted
-- to nobody), by mistake or in a clean-up script; a read-only security review found the
-- fail-open reads. The rule "the row exists" gets one home here, rather than a coalesce in
-- each reader: DELETE and TRUNCATE are refused, with what to do instead.
-- Test: schema/settings-row-stays.

create function private.tg_webhook_settings__refuse_removal()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'private.webhook_settings holds the deployment''s settings: its one row cannot be deleted'
    using errcode = '55000',
          hint = 'Change the settings with UPDATE private.webhook_settings SET ...; the column defaults are the shipped values.';
end;
$$;
comment on function private.tg_webhook_settings__refuse_removal() is
  'Refuses DELETE and TRUNCATE on private.webhook_settings: its one row is read by every check that uses a setting, and a missing row made some of them fail open.';
revoke execute on function private.tg_webhook_settings__refuse_removal() from public;

create trigger refuse_delete
before delete on private.webhook_settings
for each statement execute function private.tg_webhook_settings__refuse_removal();
create trigger refuse_truncate
before truncate on private.webhook_settings
for each statement execute function private.tg_webhook_settings__refuse_removal();

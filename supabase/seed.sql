-- Seed data for local development (`npm start`, `npm test`), loaded after the migrations.
-- Never applied to a real project (`supabase db push` does not run it).

-- Local receivers are plain http://127.0.0.1:<port>; a real project stays https-only.
update private.webhook_settings set allow_plain_http = true;

-- The local stack is not hosted Supabase: ports 25 and 587 are not blocked outbound here.
update private.webhook_settings set hosted = false;

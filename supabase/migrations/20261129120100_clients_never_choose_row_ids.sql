-- Clients never choose a row's id: the database does (gen_random_uuid()).
--
-- An id is global across tenants, so a client-chosen id that another company's row
-- already has answered differently from a new one (409 webhooks_pkey, or with
-- on_conflict=id and ignore-duplicates `201 []`): an ADMIN could tell whether another
-- company's webhook exists. Without the column privilege every insert that names an id
-- is refused the same way (42501), whoever owns that id, or nobody.
-- processes never granted it; a pgTAP catalog check keeps it so for every table: each
-- unique key that API roles can write either contains company_id (which RLS checks
-- before any uniqueness) or no column they can write.

revoke insert (id) on public.webhooks from authenticated;

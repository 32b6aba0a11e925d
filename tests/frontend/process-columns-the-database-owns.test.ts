// Through supabase-js and PostgREST, the process columns the database owns behave as the
// README says: an API user sending revision or carbon_copy is refused (403, 42501) and
// nothing changes; the service role's values for them are ignored; the approver of an
// approved process stays recorded when an ADMIN tries to clear it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWorld, serviceClient, superuser } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let processId: string;

const stateOf = async (id: string) =>
  (await db.query("select name, revision::integer as revision, carbon_copy, approved, approved_by_user_id, approved_at from public.processes where id = $1", [id])).rows[0];

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  processId = (await db.query<{ id: string }>("insert into public.processes (company_id, name) values ($1, 'Assembly') returning id", [world.companyA])).rows[0]!.id;
});
afterAll(async () => db?.end());

describe("revision and carbon_copy", () => {
  it("an ADMIN sending them on insert is refused with 403 / 42501, and nothing is created", async () => {
    for (const extra of [{ revision: 7 }, { carbon_copy: { name: "forged" } }]) {
      const { status, error } = await world.adminA.client.from("processes").insert({ company_id: world.companyA, name: "Forged", ...extra }).select();
      expect({ status, code: error?.code, message: error?.message }).toEqual({ status: 403, code: "42501", message: "permission denied for table processes" });
    }
    const forged = await db.query("select 1 from public.processes where name = 'Forged'");
    expect(forged.rowCount).toBe(0);
  });

  it("an ADMIN sending them on update is refused with 403 / 42501, and nothing changes", async () => {
    const before = await stateOf(processId);
    for (const patch of [{ revision: 99 }, { carbon_copy: {} }, { name: "Renamed", revision: 99 }]) {
      const { status, error } = await world.adminA.client.from("processes").update(patch).eq("id", processId).select();
      expect({ status, code: error?.code }).toEqual({ status: 403, code: "42501" });
    }
    expect(await stateOf(processId)).toEqual(before);
  });

  it("the service role's values for them are ignored: the trigger owns them", async () => {
    const service = serviceClient();
    const { data: created, error } = await service
      .from("processes")
      .insert({ company_id: world.companyA, name: "Imported", revision: 42, carbon_copy: { name: "forged" } })
      .select("id, revision, carbon_copy")
      .single();
    expect(error).toBeNull();
    expect(created).toMatchObject({ revision: 1, carbon_copy: null });
    const { error: updateError } = await service.from("processes").update({ revision: 99, carbon_copy: { forged: true } }).eq("id", created!.id);
    expect(updateError).toBeNull();
    expect(await stateOf(created!.id)).toMatchObject({ revision: 1, carbon_copy: null });
  });
});

describe("the approver of an approved process", () => {
  it("an ADMIN clearing approved_by_user_id changes nothing: approver, approval and time stay", async () => {
    const { error: approveError } = await world.adminA.client.from("processes").update({ approved: true }).eq("id", processId);
    expect(approveError).toBeNull();
    const approved = await stateOf(processId);
    expect(approved).toMatchObject({ approved: true, approved_by_user_id: world.adminA.userId });

    const { error } = await world.adminA.client.from("processes").update({ approved_by_user_id: null }).eq("id", processId);
    expect(error).toBeNull();
    expect(await stateOf(processId)).toEqual(approved);
  });

  it("deleting the approving user clears it, and only it", async () => {
    const approved = await stateOf(processId);
    await db.query("delete from auth.users where id = $1", [world.adminA.userId]);
    expect(await stateOf(processId)).toEqual({ ...approved, approved_by_user_id: null });
  });
});

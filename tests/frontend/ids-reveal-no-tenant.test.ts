// No answer to a client depends on another company's rows: through supabase-js, PostgREST
// and the gateway, an insert or upsert that names an id gets the same refusal whether the
// id belongs to another company, to the caller's company, or to nobody, and changes
// nothing. Checked on every table an API user can insert into.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWorld, superuser } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
const ids = { webhooks: { mine: "", theirs: "" }, processes: { mine: "", theirs: "" } };

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  const hook = async (company: string, url: string) =>
    (await db.query<{ id: string }>("insert into public.webhooks (company_id, trigger_type, url) values ($1, 'PROCESS_CREATED', $2) returning id", [company, url])).rows[0]!.id;
  const proc = async (company: string, name: string) =>
    (await db.query<{ id: string }>("insert into public.processes (company_id, name) values ($1, $2) returning id", [company, name])).rows[0]!.id;
  ids.webhooks = { mine: await hook(world.companyA, "https://a.example/mine"), theirs: await hook(world.companyB, "https://b.example/theirs") };
  ids.processes = { mine: await proc(world.companyA, "A assembly"), theirs: await proc(world.companyB, "B assembly") };
});
afterAll(async () => db?.end());

type Table = keyof typeof ids;
const rowFor = (table: Table, id: string) =>
  table === "webhooks"
    ? { id, company_id: world.companyA, trigger_type: "PROCESS_CREATED", url: "https://a.example/probe" }
    : { id, company_id: world.companyA, name: "Probe" };

const forms = {
  insert: (table: Table, id: string) => world.adminA.client.from(table).insert(rowFor(table, id) as never).select(),
  "upsert, ignore duplicates": (table: Table, id: string) =>
    world.adminA.client.from(table).upsert(rowFor(table, id) as never, { onConflict: "id", ignoreDuplicates: true }).select(),
  "upsert, merge": (table: Table, id: string) => world.adminA.client.from(table).upsert(rowFor(table, id) as never, { onConflict: "id" }).select(),
};

describe.each(["webhooks", "processes"] as const)("an ADMIN naming an id in %s", (table) => {
  it.each(Object.keys(forms) as (keyof typeof forms)[])("%s: the same refusal for another company's id, their own and an unused one", async (form) => {
    const answers = [];
    for (const id of [ids[table].theirs, ids[table].mine, randomUUID()]) {
      const { status, error, data } = await forms[form](table, id);
      answers.push({ status, code: error?.code, message: error?.message, data });
    }
    expect(answers[0]).toEqual({ status: 403, code: "42501", message: `permission denied for table ${table}`, data: null });
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  it("nothing changed: no probe row, the other company's row as it was", async () => {
    const probes = await db.query(`select 1 from public.${table} where company_id = $1 and ${table === "webhooks" ? "url = 'https://a.example/probe'" : "name = 'Probe'"}`, [world.companyA]);
    expect(probes.rowCount).toBe(0);
    const theirs = await db.query(`select company_id from public.${table} where id = $1`, [ids[table].theirs]);
    expect(theirs.rows).toEqual([{ company_id: world.companyB }]);
  });
});

describe("unique keys with company_id", () => {
  it("copying another company's (company_id, trigger_type, url) answers like any other company's values: RLS, not the key", async () => {
    const insert = async (url: string) => {
      const { status, error } = await world.adminA.client
        .from("webhooks")
        .insert({ company_id: world.companyB, trigger_type: "PROCESS_CREATED", url })
        .select();
      return { status, code: error?.code, message: error?.message };
    };
    const taken = await insert("https://b.example/theirs");
    expect(taken).toEqual({ status: 403, code: "42501", message: 'new row violates row-level security policy for table "webhooks"' });
    expect(await insert("https://b.example/never-registered")).toEqual(taken);
  });

  it("an upsert on (company_id, trigger_type, url) is refused the same way for every url: that rule is an expression index, no key", async () => {
    // One url per company and trigger type is a unique index on (company_id, trigger_type,
    // (url || '')) so that url is no key column (the scheduling migration): ON CONFLICT
    // cannot name it, for anyone, whatever rows exist.
    const upsert = async (url: string) => {
      const { status, error } = await world.adminA.client
        .from("webhooks")
        .upsert({ company_id: world.companyB, trigger_type: "PROCESS_CREATED", url }, { onConflict: "company_id,trigger_type,url", ignoreDuplicates: true })
        .select();
      return { status, code: error?.code };
    };
    const taken = await upsert("https://b.example/theirs");
    expect(taken).toEqual({ status: 400, code: "42P10" });
    expect(await upsert("https://b.example/never-registered")).toEqual(taken);
  });
});

// Tokens the gateway and PostgREST must refuse: a wrong secret, an expired token,
// alg "none", and a token claiming role service_role without the real signature.
// Each gets 401 and reads nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWorld, env, signToken, superuser, userClaims } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  await db.query("insert into public.webhooks (company_id, trigger_type, url) values ($1, 'PROCESS_CREATED', 'https://hooks.acme.test/jwt')", [world.companyA]);
});
afterAll(async () => db?.end());

function base64url(value: object) {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

async function restWith(token: string, path = "/rest/v1/webhooks?select=*") {
  const res = await fetch(`${env.supabaseUrl}${path}`, { headers: { apikey: env.anonKey, Authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.text() };
}

describe("forged and expired tokens", () => {
  it("accepts the real ADMIN token (control)", async () => {
    const res = await restWith(await signToken(userClaims(world.adminA.userId!)));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toHaveLength(1);
  });

  it("rejects a token signed with the wrong secret", async () => {
    const forged = await signToken(userClaims(world.adminA.userId!), { secret: "not-the-project-secret-but-32-chars-long!!" });
    const res = await restWith(forged);
    expect(res.status).toBe(401);
    expect(res.body).not.toContain("hooks.acme.test");
  });

  it("rejects an expired token", async () => {
    const expired = await signToken(userClaims(world.adminA.userId!), { expiresIn: -60 });
    const res = await restWith(expired);
    expect(res.status).toBe(401);
    expect(res.body).toMatch(/expired/i);
  });

  it("rejects alg: none", async () => {
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ ...userClaims(world.adminA.userId!), exp: now + 600 })}.`;
    const res = await restWith(unsigned);
    expect(res.status).toBe(401);
    expect(res.body).not.toContain("hooks.acme.test");
  });

  it("rejects a self-made service_role token", async () => {
    const now = Math.floor(Date.now() / 1000);
    const header = base64url({ alg: "HS256", typ: "JWT" });
    const payload = base64url({ role: "service_role", iss: "supabase-demo", exp: now + 600 });
    const res = await restWith(`${header}.${payload}.${Buffer.from("forged").toString("base64url")}`);
    expect(res.status).toBe(401);
    const wrongSecret = await signToken({ role: "service_role" }, { secret: "another-secret-of-at-least-32-characters" });
    const res2 = await restWith(wrongSecret);
    expect(res2.status).toBe(401);
    expect(res2.body).not.toContain("hooks.acme.test");
  });

  it("rejects requests without an apikey or with an unknown one at the gateway", async () => {
    const noKey = await fetch(`${env.supabaseUrl}/rest/v1/webhooks`);
    expect(noKey.status).toBe(401);
    const badKey = await fetch(`${env.supabaseUrl}/rest/v1/webhooks`, { headers: { apikey: "nope" } });
    expect(badKey.status).toBe(401);
  });
});

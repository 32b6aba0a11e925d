// Shared fixtures for the vitest suites: a superuser connection to set up and check the
// database, users of several kinds with real signed tokens, and supabase-js clients that
// go through the real gateway and PostgREST.
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { SignJWT } from "jose";
import pg from "pg";
import { inject } from "vitest";
import ws from "ws";
import type { Database } from "../../src/database.types.ts";

export const env = {
  get dbUrl() { return inject("dbUrl"); },
  get supabaseUrl() { return inject("supabaseUrl"); },
  get anonKey() { return inject("anonKey"); },
  get serviceRoleKey() { return inject("serviceRoleKey"); },
  get jwtSecret() { return inject("jwtSecret"); },
};

/** Superuser access for arranging fixtures and checking what really changed. */
export async function superuser(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: env.dbUrl });
  await client.connect();
  return client;
}

export async function signToken(claims: Record<string, unknown>, options: { secret?: string; expiresIn?: number } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 3600))
    .sign(new TextEncoder().encode(options.secret ?? env.jwtSecret));
}

export function userClaims(userId: string) {
  return { sub: userId, role: "authenticated", aud: "authenticated" };
}

/** supabase-js as a browser would use it: anon key as apikey, the user's token as bearer. */
export function clientWithToken(token?: string): SupabaseClient<Database> {
  return createClient<Database>(env.supabaseUrl, env.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: ws as never },
    global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
  });
}

export function serviceClient(): SupabaseClient<Database> {
  return createClient<Database>(env.supabaseUrl, env.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: ws as never },
  });
}

export interface Actor {
  name: string;
  userId: string | null;
  client: SupabaseClient<Database>;
}

/**
 * Two companies and one person of every kind the RLS matrix cares about.
 * Emails are unique per call so suites never collide.
 */
export async function createWorld(db: pg.Client) {
  const tag = Math.random().toString(36).slice(2, 8);
  const company = async (name: string) =>
    (await db.query<{ id: string }>("insert into public.companies (name) values ($1) returning id", [`${name} ${tag}`])).rows[0]!.id;
  const companyA = await company("Acme");
  const companyB = await company("Bolt");

  const person = async (name: string, companyId: string | null, role: string, active = true, profile = true) => {
    const email = `${name}-${tag}@test.local`;
    const id = (await db.query<{ id: string }>("insert into auth.users (id, email) values (gen_random_uuid(), $1) returning id", [email])).rows[0]!.id;
    if (profile) {
      await db.query(
        "insert into public.users (supabase_uid, company_id, email, role, is_active) values ($1, $2, $3, $4, $5)",
        [id, companyId, email, role, active],
      );
    }
    const actor: Actor = { name, userId: id, client: clientWithToken(await signToken(userClaims(id))) };
    return actor;
  };

  const adminA = await person("admin-a", companyA, "ADMIN");
  const adminB = await person("admin-b", companyB, "ADMIN");
  const memberA = await person("member-a", companyA, "MEMBER");
  const inactiveAdminA = await person("inactive-admin-a", companyA, "ADMIN", false);
  const noProfile = await person("no-profile", null, "MEMBER", true, false);
  const anon: Actor = { name: "anon", userId: null, client: clientWithToken() };

  return { tag, companyA, companyB, adminA, adminB, memberA, inactiveAdminA, noProfile, anon };
}

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
 * The cast the pgTAP tests use (tests.create_cast in supabase/tests/helpers/setup.sql: two
 * active companies, an inactive one, and one person of every kind the RLS matrix cares
 * about), with a signed-in supabase-js client for the people these suites act as.
 * Emails are tagged per call so suites never collide.
 */
export async function createWorld(db: pg.Client) {
  const tag = Math.random().toString(36).slice(2, 8);
  const cast = (await db.query<Record<string, string>>("select * from tests.create_cast(tag => $1)", [tag])).rows[0]!;
  const actor = async (name: string, userId: string): Promise<Actor> =>
    ({ name, userId, client: clientWithToken(await signToken(userClaims(userId))) });

  return {
    tag,
    companyA: cast.company_a!,
    companyB: cast.company_b!,
    adminA: await actor("admin-a", cast.admin_a!),
    adminB: await actor("admin-b", cast.admin_b!),
    memberA: await actor("member-a", cast.member_a!),
    inactiveAdminA: await actor("inactive-admin-a", cast.inactive_admin_a!),
    noProfile: await actor("no-profile", cast.no_profile!),
    anon: { name: "anon", userId: null, client: clientWithToken() } satisfies Actor,
  };
}

// HTTP mode, as Supabase Edge Functions run it: woken by pg_net (on commit) and pg_cron
// (retries), it drains due deliveries until none are left or its time budget runs out,
// and answers with counts. Kept apart from Deno.serve so tests call it directly.
import type { DispatchEngine, DrainCounts } from "../_shared/dispatch/engine.ts";

export interface HttpHandlerDeps {
  engine: Pick<DispatchEngine, "drain">;
  /** The only bearer token accepted (SUPABASE_SERVICE_ROLE_KEY). */
  serviceRoleKey: string;
  /**
   * Wall-clock budget of one request. Supabase allows 150 s wall clock (free plan) and
   * 2 s of CPU per request; the default stays well under the wall-clock limit and
   * sending is I/O, not CPU.
   */
  budgetMs: number;
  /**
   * Supabase's EdgeRuntime.waitUntil where it exists: the drain then outlives the request,
   * which answers 202 at once (pg_net gives up waiting after a few seconds, and its
   * disconnect must not cut a drain short). Without it the drain runs inline and the
   * response carries the counts.
   */
  waitUntil?: (work: Promise<unknown>) => void;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** Constant-time comparison, so the key cannot be guessed byte by byte from timings. */
function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export function createHttpHandler({ engine, serviceRoleKey, budgetMs, waitUntil }: HttpHandlerDeps) {
  return async (request: Request): Promise<Response> => {
    const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim() ?? "";
    // Nothing from the request is echoed back, authorized or not.
    if (!sameSecret(bearer, serviceRoleKey)) return json(401, { error: "unauthorized" });
    if (request.method !== "POST") return json(405, { error: "use POST" });

    const started = Date.now();
    // The body (pg_net sends a small JSON reason) is not needed: the outbox is the truth.
    await request.body?.cancel();
    if (waitUntil) {
      waitUntil(engine.drain({ budgetMs }).catch((error) => console.error(`drain failed: ${error}`)));
      return json(202, { accepted: true });
    }
    const counts: DrainCounts = await engine.drain({ budgetMs });
    return json(200, { ...counts, duration_ms: Date.now() - started });
  };
}

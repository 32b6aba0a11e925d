// What a test needs to know about the Deno running it.

/**
 * Flags for the `deno run` / `deno eval` children tests start with Deno.execPath(). Deno
 * 2.1 (the level hosted Supabase runs; `npm test`'s deno-2.1 step) cannot read
 * deno.lock's version 5 and runs without a lock, as the step itself does.
 */
export const CHILD_DENO_FLAGS: readonly string[] = Deno.version.deno.startsWith("2.1.") ? ["--no-lock"] : [];

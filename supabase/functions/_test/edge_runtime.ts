// index.ts as Supabase's Edge Runtime runs it, in the two ways the dispatcher can tell:
// Deno.exit does nothing (the runtime keeps the worker), and EdgeRuntime.waitUntil exists
// (the response goes out before the drain ends). Started by the end-to-end tests in place of
// index.ts (DispatcherOptions.edgeRuntime); never deployed.

Deno.exit = ((code?: number) => {
  console.log(`Deno.exit(${code ?? ""}) ignored, as the Edge Runtime does`);
}) as typeof Deno.exit;

const background = new Set<Promise<unknown>>();
Object.assign(globalThis, {
  EdgeRuntime: {
    waitUntil(work: Promise<unknown>) {
      background.add(work);
      work.finally(() => background.delete(work));
    },
  },
});

// Imported only now: its top-level code must find the runtime as set up above.
await import("../webhook-dispatcher/index.ts");

// The package as it ships: compiled JavaScript and type declarations in dist/ behind
// package.json "exports" ("." and "./portal"). Node imports both by name and the client
// works against the real gateway; the portal renders; a TypeScript app (NodeNext, full
// library checks) type-checks against the .d.ts files. The browser tests run the page
// Vite built on the same dist/portal.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, PORTAL_APP_DIR, portalJsSizes } from "../../scripts/build.mjs";
import { createWorld, env, signToken, superuser, userClaims } from "../support/world.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "..", "..");

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

describe("the built package", () => {
  it("has JavaScript and declarations for every export", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
    for (const [entry, target] of Object.entries<string | { types: string; default: string }>(pkg.exports)) {
      const files = typeof target === "string" ? [target] : [target.types, target.default];
      for (const file of files) expect(fs.existsSync(path.join(root, file)), `${entry} -> ${file}`).toBe(true);
    }
    expect(pkg.peerDependencies).toMatchObject({ react: expect.any(String), "react-dom": expect.any(String) });
  });

  it("ships the migrations and the function, and no test or test helper (the TLS fixture's private key)", async () => {
    const { stdout } = await promisify(execFile)("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root });
    const files: string[] = JSON.parse(stdout)[0].files.map((f: { path: string }) => f.path);
    expect(files).toContain("supabase/functions/webhook-dispatcher/index.ts");
    expect(files.filter((f) => f.startsWith("supabase/migrations/")).length).toBeGreaterThan(0);
    expect(files.filter((f) => /(^|\/)_test\/|_test\.ts$|\.test\.|PRIVATE KEY/.test(f))).toEqual([]);
  });

  it("imports in plain Node by package name, and the client works through the gateway", async () => {
    const db = await superuser();
    try {
      const world = await createWorld(db);
      const script = `
        import { createClient } from "@supabase/supabase-js";
        import { createWebhooksClient, WebhooksError } from "@serial/webhooks";
        import { WebhooksPortal } from "@serial/webhooks/portal";
        import { createElement } from "react";
        import { renderToString } from "react-dom/server";
        import ws from "ws";
        const supabase = createClient(process.env.URL, process.env.ANON, {
          accessToken: async () => process.env.TOKEN, realtime: { transport: ws } });
        const api = createWebhooksClient(supabase);
        const types = (await api.listTriggerTypes()).map((t) => t.name);
        const company = await api.adminCompanyId();
        const html = renderToString(createElement(WebhooksPortal, { supabase }));
        console.log(JSON.stringify({ types, company, html, error: new WebhooksError("invalid_url", "x") instanceof Error }));
      `;
      const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
        cwd: root,
        env: { ...process.env, URL: env.supabaseUrl, ANON: env.anonKey, TOKEN: await signToken(userClaims(world.adminA.userId!)) },
      });
      const out = JSON.parse(stdout);
      expect(out.types).toEqual(expect.arrayContaining(["PROCESS_CREATED", "WEBHOOK_TEST"]));
      expect(out.company).toBe(world.companyA);
      expect(out.html).toContain("Checking your access");
      expect(out.error).toBe(true);
    } finally {
      await db.end();
    }
  });

  it("type-checks in an app that imports it (NodeNext, library checks on)", async () => {
    const app = fs.mkdtempSync(path.join(os.tmpdir(), "serial-webhooks-consumer-"));
    try {
      const modules = path.join(app, "node_modules");
      fs.mkdirSync(path.join(modules, "@serial"), { recursive: true });
      fs.mkdirSync(path.join(modules, "@types"), { recursive: true });
      fs.symlinkSync(root, path.join(modules, "@serial", "webhooks"));
      for (const dep of ["react", "@supabase", "standardwebhooks", "@types/react", "@types/node"]) {
        fs.symlinkSync(path.join(root, "node_modules", dep), path.join(modules, dep));
      }
      fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "consumer", type: "module" }));
      fs.writeFileSync(
        path.join(app, "tsconfig.json"),
        JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: false, types: ["node"] }, files: ["app.ts"] }),
      );
      fs.writeFileSync(
        path.join(app, "app.ts"),
        `import { createClient } from "@supabase/supabase-js";
         import { createWebhooksClient, type DeliveryListItem, type Page } from "@serial/webhooks";
         import { WebhooksPortal, type WebhooksPortalProps } from "@serial/webhooks/portal";
         import { createElement } from "react";
         const supabase = createClient("http://127.0.0.1:54321", "anon");
         const api = createWebhooksClient(supabase);
         export const page: Promise<Page<DeliveryListItem>> = api.listDeliveries({ after: "cursor", count: false });
         export const portal = createElement(WebhooksPortal, { supabase, pollIntervalMs: 5000 } satisfies WebhooksPortalProps);
         // @ts-expect-error: the portal needs a supabase client (proves the types are real, not any)
         export const wrong = createElement(WebhooksPortal, {});
        `,
      );
      const result = await run(path.join(root, "node_modules", ".bin", "tsc"), ["-p", app]).then(
        () => ({ code: 0, out: "" }),
        (err: { code: number; stdout: string }) => ({ code: err.code, out: err.stdout }),
      );
      expect(result.out).toBe("");
      expect(result.code).toBe(0);
    } finally {
      fs.rmSync(app, { recursive: true, force: true });
    }
  }, 60_000);

  it("keeps the portal page's JavaScript within 150 KB gzipped", () => {
    const sizes = portalJsSizes();
    expect(sizes.files.length).toBeGreaterThan(0);
    expect(sizes.gzipBytes).toBeLessThanOrEqual(150 * 1024);
  });

  it("builds the page with React's production JSX, also when NODE_ENV is \"test\" (vitest's)", async () => {
    // jsxDEV exists only in React's development bundle: in the production one the page
    // throws "jsxDEV is not a function" before it shows anything. Vite turns dev JSX on
    // whenever NODE_ENV is not "production", so build once more the way vitest would.
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "portal-app-"));
    try {
      await run(path.join(root, "node_modules", ".bin", "vite"),
        ["build", "--config", "vite.portal.config.mjs", "--outDir", out, "--emptyOutDir"],
        { cwd: root, env: { ...process.env, NODE_ENV: "test" } });
      const js = fs.readdirSync(path.join(out, "assets")).filter((f) => f.endsWith(".js"));
      expect(js.length).toBeGreaterThan(0);
      for (const file of js) {
        expect(fs.readFileSync(path.join(out, "assets", file), "utf8"), file).not.toContain("jsxDEV");
      }
      for (const { file } of portalJsSizes().files) {
        expect(fs.readFileSync(path.join(PORTAL_APP_DIR, "assets", file), "utf8"), file).not.toContain("jsxDEV");
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});

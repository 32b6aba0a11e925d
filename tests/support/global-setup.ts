// Starts a real PostgREST and the local gateway in front of the test database that
// `npm test` created (DB_URL), so the suites use supabase-js exactly as a frontend does.
import type { ChildProcess } from "node:child_process";
import type { Server } from "node:http";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startPostgrest } from "../../scripts/lib/postgrest.mjs";
import { startGateway } from "../../scripts/lib/gateway.mjs";
import { apiKeys, jwtSecret } from "../../scripts/lib/keys.mjs";
import { ensureBuilt, PORTAL_APP_DIR } from "../../scripts/build.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    dbUrl: string;
    supabaseUrl: string;
    anonKey: string;
    serviceRoleKey: string;
    jwtSecret: string;
  }
}

let postgrest: ChildProcess | undefined;
let gateway: Server | undefined;

export async function setup(project: TestProject) {
  const dbUrl = process.env.DB_URL;
  if (!dbUrl) {
    throw new Error("DB_URL is not set: run the suites with `npm test` (it starts a fresh database), or `npm test -- --only=vitest`.");
  }
  const restPort = Number(process.env.TEST_REST_PORT ?? 54333);
  const gatewayPort = Number(process.env.TEST_GATEWAY_PORT ?? 54331);
  const secret: string = jwtSecret();
  const keys = await apiKeys(secret);
  const authenticatorUrl = new URL(dbUrl);
  authenticatorUrl.username = "authenticator";

  postgrest = await startPostgrest({
    dbUrl: authenticatorUrl.toString(),
    port: restPort,
    adminPort: restPort + 100,
    jwtSecret: secret,
    configPath: path.join(os.tmpdir(), `serial-webhooks-postgrest-${restPort}.conf`),
  });
  // The portal page too, as `npm start` serves it (built first if its sources changed).
  await ensureBuilt();
  gateway = await startGateway({
    port: gatewayPort,
    routes: { rest: `http://127.0.0.1:${restPort}` },
    apiKeys: [keys.anonKey, keys.serviceRoleKey],
    portal: { dir: PORTAL_APP_DIR, anonKey: keys.anonKey },
  });

  project.provide("dbUrl", dbUrl);
  project.provide("supabaseUrl", `http://127.0.0.1:${gatewayPort}`);
  project.provide("anonKey", keys.anonKey);
  project.provide("serviceRoleKey", keys.serviceRoleKey);
  project.provide("jwtSecret", secret);
}

export async function teardown() {
  await new Promise<void>((resolve) => (gateway ? gateway.close(() => resolve()) : resolve()));
  postgrest?.kill("SIGTERM");
}

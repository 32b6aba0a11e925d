// `npm run demo`: the whole product, end to end, against the running `npm start` stack.
// Creates a company and its ADMIN, a process and a webhook pointing at a small local
// receiver, revises the process through supabase-js as that ADMIN, prints the signed
// delivery as the receiver verified it, then the delivery log as the ADMIN sees it.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createClient } from "@supabase/supabase-js";
import ws from "ws";
import { createWebhooksClient, verifyWebhook, type Database } from "../src/index.ts";
import { createLocalUser } from "./create-user.mjs";

const stackFile = path.resolve(import.meta.dirname, "..", ".local", "stack.env");
if (!fs.existsSync(stackFile)) {
  console.error("The local stack is not running (.local/stack.env is missing): start it with `npm start` in another terminal.");
  process.exit(2);
}
const stack = Object.fromEntries(
  fs.readFileSync(stackFile, "utf8").split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
) as Record<string, string>;
const receiverPort = Number(stack.DEMO_RECEIVER_PORT ?? 54399);

const step = (text: string) => console.log(`\n== ${text}`);

// 1. A receiver that verifies the signature the way an integrator would.
let secret = "";
const received = new Promise<{ headers: http.IncomingHttpHeaders; body: string }>((resolve) => {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      res.writeHead(204).end();
      if (JSON.parse(body).type === "PROCESS_REVISED") {
        server.close();
        resolve({ headers: req.headers, body });
      }
    });
  });
  server.listen(receiverPort, "127.0.0.1");
});

step("Company and ADMIN (created without GoTrue, token signed with the local JWT secret)");
const stamp = new Date().toISOString().slice(0, 19);
const admin = await createLocalUser({
  dbUrl: stack.DB_URL,
  jwtSecret: stack.JWT_SECRET,
  email: `admin+${Date.now()}@demo.test`,
  company: `Demo Manufacturing ${stamp}`,
  role: "ADMIN",
});
console.log(`company ${admin.companyId}\nadmin   ${admin.userId}`);

const supabase = createClient<Database>(stack.SUPABASE_URL!, stack.SUPABASE_ANON_KEY!, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: ws as never },
  global: { headers: { Authorization: `Bearer ${admin.token}` } },
});
const webhooks = createWebhooksClient(supabase);

step("Webhook PROCESS_REVISED -> local receiver");
const hook = await webhooks.createWebhook({
  companyId: admin.companyId,
  triggerType: "PROCESS_REVISED",
  url: `http://127.0.0.1:${receiverPort}/serial-webhooks`,
  description: "npm run demo",
});
secret = await webhooks.revealSecret(hook.id);
console.log(`webhook ${hook.id}\nsecret  ${secret.slice(0, 12)}... (from get_webhook_secret)`);

step("Process created, then revised through supabase-js as the ADMIN");
const { data: process_, error: createError } = await supabase
  .from("processes")
  .insert({ company_id: admin.companyId, name: "Final assembly", type: "PRODUCTION" })
  .select("id, name, revision")
  .single();
if (createError) throw createError;
const { data: revised, error: reviseError } = await supabase
  .from("processes")
  .update({ name: "Final assembly (torque 12 Nm)", revision_description: "Torque spec changed" })
  .eq("id", process_.id)
  .select("id, name, revision")
  .single();
if (reviseError) throw reviseError;
console.log(`process ${process_.id}: revision ${process_.revision} -> ${revised.revision}`);

step("Receiver: the signed delivery, verified with standardwebhooks");
const timeout = setTimeout(() => {
  console.error("No delivery within 30 s: is the dispatcher running (npm start prints it)?");
  process.exit(1);
}, 30_000);
const delivery = await received;
clearTimeout(timeout);
const payload = verifyWebhook(delivery.body, delivery.headers as Record<string, string>, secret);
console.log(`webhook-id        ${delivery.headers["webhook-id"]}`);
console.log(`webhook-timestamp ${delivery.headers["webhook-timestamp"]}`);
console.log(`webhook-signature ${delivery.headers["webhook-signature"]}`);
console.log("signature         verified");
console.log(JSON.stringify(payload, null, 2));

step("Delivery log, as the ADMIN sees it (RLS)");
await new Promise((r) => setTimeout(r, 500)); // the dispatcher records the attempt right after the response
const page = await webhooks.listDeliveries({ webhookId: hook.id });
for (const item of page.items) {
  const full = await webhooks.getDelivery(item.id);
  console.log(`${full.id}  ${full.event.trigger_type}  ${full.state}  attempts=${full.attempt_count}`);
  for (const attempt of full.attempts) {
    console.log(`  #${attempt.attempt_number} ${attempt.outcome} HTTP ${attempt.status ?? "-"} in ${attempt.duration_ms} ms`);
  }
}
process.exit(0);

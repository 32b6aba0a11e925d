// `deno bench --allow-all _shared/delivery/sign_bench.ts` (from supabase/functions): what
// signing one delivery costs with the runtime's HMAC (sign.ts) and with the reference
// `standardwebhooks` library's pure-JS SHA-256, on a body of a typical event's size.
// bench/README.md ("Signing") has the figures.

import { Webhook } from "standardwebhooks";
import { signWebhook } from "./sign.ts";

const secret = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
const body = JSON.stringify({
  type: "PROCESS_REVISED",
  timestamp: new Date().toISOString(),
  company_id: crypto.randomUUID(),
  data: { id: crypto.randomUUID(), name: "Final assembly", revision: 12, notes: "x".repeat(600) },
});
const msgId = crypto.randomUUID();
const at = new Date();

Deno.bench("sign.ts (node:crypto HMAC)", { group: "sign", baseline: true }, () => {
  signWebhook({ msgId, timestamp: at, body, secrets: [secret] });
});

Deno.bench("standardwebhooks (pure JS)", { group: "sign" }, () => {
  new Webhook(secret).sign(msgId, at, body);
});

// What a peer's task does for one job: sign with `standardwebhooks` (the same whsec_ secrets
// and headers as our dispatcher, which computes the same HMAC with node:crypto since
// bench/README.md's "Signing") and POST with the same 15 s timeout.
// Any non-2xx or network error throws, so the queue library records a failure and retries.
//
// The job carries delivery id, webhook id, URL and body (see run.mjs); the signing secrets
// stay in the database (private.webhook_signing_secrets) and are cached here for a minute,
// as a careful implementation would rather than copying secrets into every job row.
import pg from 'pg';
import { Webhook } from 'standardwebhooks';

export const TIMEOUT_MS = 15_000;
const SECRET_TTL_MS = 60_000;

export function makeDeliverer(connectionString) {
  const pool = new pg.Pool({ connectionString, max: 2, application_name: 'bench-peer-secrets' });
  const signers = new Map(); // webhook id -> { at, promise of Webhook[] }

  function signersFor(webhookId) {
    const hit = signers.get(webhookId);
    if (hit && Date.now() - hit.at < SECRET_TTL_MS) return hit.promise;
    const promise = pool
      .query('select private.webhook_signing_secrets($1) as secrets', [webhookId])
      .then(({ rows }) => (rows[0]?.secrets ?? []).map((s) => new Webhook(s)));
    promise.catch(() => signers.delete(webhookId));
    signers.set(webhookId, { at: Date.now(), promise });
    return promise;
  }

  async function deliver({ delivery_id: id, webhook_id: webhookId, url, body }) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const webhooks = await signersFor(webhookId);
    if (webhooks.length === 0) throw new Error(`no signing secret for webhook ${webhookId}`);
    const timestamp = new Date();
    const response = await fetch(url, {
      method: 'POST',
      body: text,
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
        'webhook-signature': webhooks.map((w) => w.sign(id, timestamp, text)).join(' '),
      },
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await response.arrayBuffer();
    if (response.status < 200 || response.status >= 300) throw new Error(`HTTP ${response.status}`);
  }

  return { deliver, close: () => pool.end() };
}

/** Prints `ready` for the harness, and stops cleanly on SIGTERM/SIGINT. */
export function announceReady(stop) {
  console.log('ready');
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, async () => {
      if (stopping) return;
      stopping = true;
      const force = setTimeout(() => process.exit(1), 8_000);
      try {
        await stop();
      } finally {
        clearTimeout(force);
        process.exit(0);
      }
    });
  }
}

// One endpoint: what it is, its state (public.webhook_endpoint_health, refreshed as it
// changes), its delivery order, its last 24 hours (figures and a chart), and everything an
// ADMIN can do with it: edit, enable/disable, send a test event, reveal, copy and rotate
// the secret, replay since a time, delete; and its latest deliveries.
import { useState } from "react";
import type { Webhook } from "../../client.ts";
import { ConfirmDialog, CopyButton, ErrorMessage, LastOutcome, Loading, Notice, StateBadge } from "../components.tsx";
import { isNotVisible, PortalLink, useAction, useLoad, usePortal } from "../context.tsx";
import { windowStart } from "../logic/chart.ts";
import { CONCURRENCY_RULE, concurrencyText, DELIVERY_ORDERS, formatRate, formatTime, fromLocalInput, HELD_BACK_BY_OWN_LIMITS, limitText, rateText, toLocalInput, WAITING_FOR_COMPANY_SHARE } from "../logic/format.ts";
import { DeliveryLog } from "./DeliveriesView.tsx";
import { EndpointForm } from "./EndpointForm.tsx";
import { NotFound } from "./NotFound.tsx";
import { OutcomeChart } from "./OutcomeChart.tsx";

export function EndpointView({ id, onDeleted }: { id: string; onDeleted: (url: string) => void }) {
  const { api, pollIntervalMs } = usePortal();
  const endpoint = useLoad(() => api.getWebhook(id), `endpoint-${id}`);
  if (endpoint.error && isNotVisible(endpoint.error)) return <NotFound what="endpoint" />;
  return (
    <section aria-labelledby="swp-endpoint-title">
      {endpoint.loading && !endpoint.data ? <Loading what="the endpoint" /> : null}
      <ErrorMessage error={endpoint.error} what="Could not load the endpoint" />
      {endpoint.data ? (
        <EndpointDetails webhook={endpoint.data} onChange={endpoint.reload} onDeleted={onDeleted} pollIntervalMs={pollIntervalMs} />
      ) : null}
    </section>
  );
}

function EndpointDetails({
  webhook,
  onChange,
  onDeleted,
  pollIntervalMs,
}: {
  webhook: Webhook;
  onChange: () => void;
  onDeleted: (url: string) => void;
  pollIntervalMs: number;
}) {
  const { api } = usePortal();
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const { busy, error, run } = useAction();
  const [notice, setNotice] = useState<string | null>(null);
  const [sentTest, setSentTest] = useState<string | null>(null);
  const types = useLoad(() => api.listTriggerTypes(), "trigger-types");
  // Health changes by itself (the dispatcher's attempts): refreshed while the page is open,
  // and at once after anything done here.
  const health = useLoad(() => api.getEndpointHealth(webhook.id), `health-${webhook.id}-${webhook.updated_at}`, pollIntervalMs);

  const act = (what: string, action: () => Promise<unknown>, done?: string) => {
    setNotice(null);
    return run(
      async () => {
        await action();
        if (done) setNotice(done);
        onChange();
      },
      (err) => new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`),
    );
  };

  return (
    <>
      <div className="swp-heading-row">
        <h2 id="swp-endpoint-title" className="swp-url">
          {webhook.url}
        </h2>
      </div>
      {webhook.description ? <p className="swp-description">{webhook.description}</p> : null}
      <dl className="swp-facts">
        <dt>Trigger type</dt>
        <dd>{webhook.trigger_type}</dd>
        <dt>State</dt>
        <dd>
          <StateBadge webhook={webhook} health={health.data} />
          <ErrorMessage error={health.error} what="Could not load the endpoint's health" />
        </dd>
        <dt>Last attempt</dt>
        <dd>
          {health.data?.last_attempt_at ? <LastOutcome health={health.data} withTime /> : health.data ? "none yet" : "—"}
        </dd>
        <dt>Requests at once</dt>
        <dd>
          {concurrencyText(health.data)}
          <div className="swp-muted">{CONCURRENCY_RULE}</div>
          {webhook.max_concurrent_requests !== null ? (
            <div className="swp-muted">{limitText(webhook.max_concurrent_requests)}</div>
          ) : null}
          {webhook.max_requests_per_second !== null ? (
            <div className="swp-muted">{rateText(webhook.max_requests_per_second)}</div>
          ) : null}
          {health.data?.held_back_by_own_limits ? (
            <div className="swp-held-back" role="status">{HELD_BACK_BY_OWN_LIMITS}</div>
          ) : null}
          {health.data?.waiting_for_company_share ? (
            <div className="swp-held-back" role="status">{WAITING_FOR_COMPANY_SHARE}</div>
          ) : null}
        </dd>
        <dt>Delivery order</dt>
        <dd>
          {DELIVERY_ORDERS[webhook.delivery_order].label}
          <div className="swp-muted">{DELIVERY_ORDERS[webhook.delivery_order].promise}</div>
        </dd>
        <dt>Created</dt>
        <dd>{formatTime(webhook.created_at)}</dd>
        <dt>Last changed</dt>
        <dd>{formatTime(webhook.updated_at)}</dd>
      </dl>

      {editing && types.data ? (
        <EndpointForm
          initial={webhook}
          triggerTypes={types.data}
          submitLabel="Save changes"
          onCancel={() => setEditing(false)}
          onSubmit={async (values) => {
            const description = values.description.trim() === "" ? null : values.description;
            const changes = {
              ...(values.url !== webhook.url ? { url: values.url } : {}),
              ...(values.triggerType !== webhook.trigger_type ? { triggerType: values.triggerType } : {}),
              ...(description !== webhook.description ? { description } : {}),
              ...(values.deliveryOrder !== webhook.delivery_order ? { deliveryOrder: values.deliveryOrder } : {}),
              ...(values.maxConcurrentRequests !== webhook.max_concurrent_requests
                ? { maxConcurrentRequests: values.maxConcurrentRequests }
                : {}),
              ...(values.maxRequestsPerSecond !== webhook.max_requests_per_second
                ? { maxRequestsPerSecond: values.maxRequestsPerSecond }
                : {}),
            };
            if (Object.keys(changes).length > 0) await api.updateWebhook(webhook.id, changes);
            setEditing(false);
            setNotice("Saved.");
            onChange();
          }}
        />
      ) : (
        <div className="swp-actions" role="group" aria-label="Endpoint actions">
          <button
            type="button"
            onClick={() => {
              setNotice(null); // a notice of an earlier action must not read as this edit's
              setEditing(true);
            }}
            disabled={busy || !types.data}
          >
            Edit
          </button>
          {webhook.is_active ? (
            <button type="button" onClick={() => act("Disable", () => api.disableWebhook(webhook.id), "Disabled. Pending deliveries were cancelled.")} disabled={busy}>
              Disable
            </button>
          ) : (
            <button type="button" onClick={() => act("Enable", () => api.enableWebhook(webhook.id), "Enabled.")} disabled={busy}>
              Enable
            </button>
          )}
          <button
            type="button"
            onClick={() =>
              act("Send test event", async () => {
                setSentTest(await api.sendTest(webhook.id));
              }, "Test event sent: it appears in the deliveries below.")
            }
            disabled={busy || !webhook.is_active}
          >
            Send test event
          </button>
          <button type="button" className="swp-danger" onClick={() => setConfirmDelete(true)} disabled={busy}>
            Delete…
          </button>
        </div>
      )}
      {notice ? (
        <Notice>
          {notice}
          {sentTest ? (
            <>
              {" "}
              <PortalLink to={{ page: "delivery", id: sentTest }}>Open the test delivery</PortalLink>
            </>
          ) : null}
        </Notice>
      ) : null}
      <ErrorMessage error={error} />

      <ConfirmDialog
        open={confirmDelete}
        title="Delete this endpoint?"
        confirmLabel="Delete endpoint"
        danger
        busy={busy}
        onCancel={() => setConfirmDelete(false)}
        onConfirm={() =>
          act("Delete", async () => {
            await api.deleteWebhook(webhook.id);
            setConfirmDelete(false);
            onDeleted(webhook.url);
          })
        }
      >
        <p>
          <span className="swp-url">{webhook.url}</span> stops receiving {webhook.trigger_type} events. Its signing secret is
          deleted and its pending deliveries are cancelled; the delivery history stays in the log.
        </p>
      </ConfirmDialog>

      <Last24Hours webhookId={webhook.id} pollIntervalMs={pollIntervalMs} />
      <SecretPanel webhookId={webhook.id} />
      <ReplayPanel webhook={webhook} />

      <h3>Latest deliveries</h3>
      <p>
        <PortalLink to={{ page: "deliveries", filter: { webhookId: webhook.id } }}>All deliveries of this endpoint in the log</PortalLink>
      </p>
      <DeliveryLog filter={{ webhookId: webhook.id }} webhooks={[webhook]} pageSize={10} title="Latest deliveries" />
    </>
  );
}

function Last24Hours({ webhookId, pollIntervalMs }: { webhookId: string; pollIntervalMs: number }) {
  const { api } = usePortal();
  const loaded = useLoad(
    async () => {
      const now = new Date();
      const [hours, stats] = await Promise.all([
        api.deliveriesPerHour({ webhookId, since: windowStart(now) }),
        api.endpointStats(),
      ]);
      return { now, hours, stats: stats.find((s) => s.webhook_id === webhookId) };
    },
    `last24-${webhookId}`,
    pollIntervalMs * 5,
  );
  return (
    <section aria-labelledby="swp-24h-title" className="swp-panel">
      <h3 id="swp-24h-title">Last 24 hours</h3>
      {loaded.loading && !loaded.data ? <Loading what="the figures" /> : null}
      <ErrorMessage error={loaded.error} what="Could not load the figures" />
      {loaded.data ? (
        <>
          <dl className="swp-facts swp-facts-inline">
            <dt>Deliveries</dt>
            <dd>{loaded.data.stats?.deliveries ?? 0}</dd>
            <dt>Success rate</dt>
            <dd>{formatRate(loaded.data.stats?.success_rate)}</dd>
          </dl>
          <OutcomeChart rows={loaded.data.hours} now={loaded.data.now} title="Deliveries per hour by outcome" />
        </>
      ) : null}
    </section>
  );
}

function SecretPanel({ webhookId }: { webhookId: string }) {
  const { api } = usePortal();
  const [secret, setSecret] = useState<string | null>(null);
  const [rotated, setRotated] = useState(false);
  const [confirmRotate, setConfirmRotate] = useState(false);
  const { busy, error, run } = useAction();

  return (
    <section aria-labelledby="swp-secret-title" className="swp-panel">
      <h3 id="swp-secret-title">Signing secret</h3>
      <p className="swp-hint">Receivers verify each delivery's signature with this secret (Standard Webhooks).</p>
      {secret ? (
        <p>
          <code className="swp-secret" aria-label="Secret value">
            {secret}
          </code>
        </p>
      ) : (
        <p className="swp-muted">Hidden.</p>
      )}
      <div className="swp-actions">
        {secret ? (
          <>
            <CopyButton text={secret} label="Copy secret" />
            <button type="button" onClick={() => setSecret(null)}>
              Hide secret
            </button>
          </>
        ) : (
          <button type="button" disabled={busy} onClick={() => run(async () => setSecret(await api.revealSecret(webhookId)))}>
            Reveal secret
          </button>
        )}
        <button type="button" disabled={busy} onClick={() => setConfirmRotate(true)}>
          Rotate secret…
        </button>
      </div>
      {rotated ? (
        <Notice>
          Rotated. Deliveries are now signed with the new secret shown above and, for the next 24 hours, with the old one too.
        </Notice>
      ) : null}
      <ErrorMessage error={error} what="Secret" />
      <ConfirmDialog
        open={confirmRotate}
        title="Rotate the signing secret?"
        confirmLabel="Rotate secret"
        busy={busy}
        onCancel={() => setConfirmRotate(false)}
        onConfirm={() =>
          run(async () => {
            setSecret(await api.rotateSecret(webhookId));
            setRotated(true);
            setConfirmRotate(false);
          })
        }
      >
        <p>
          A new secret signs every delivery from now on. The old one keeps signing alongside it for 24 hours, so your receiver
          can switch over without losing a delivery. Rotating again within those 24 hours drops the older secret at once.
        </p>
      </ConfirmDialog>
    </section>
  );
}

function ReplayPanel({ webhook }: { webhook: Webhook }) {
  const { api } = usePortal();
  const [since, setSince] = useState(() => toLocalInput(new Date(Date.now() - 24 * 3600_000)));
  const [count, setCount] = useState<{ since: string; n: number } | null>(null);
  const [done, setDone] = useState<number | null>(null);
  const { busy, error, run } = useAction();
  const instant = fromLocalInput(since);

  return (
    <section aria-labelledby="swp-replay-title" className="swp-panel">
      <h3 id="swp-replay-title">Replay</h3>
      <p className="swp-hint">
        Sends again every event since a time that this endpoint never received: each one whose deliveries all failed or were
        cancelled. You see how many before anything is sent.
      </p>
      <form
        className="swp-inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!instant) return;
          setDone(null);
          run(async () => setCount({ since, n: await api.countReplayable(webhook.id, instant) }));
        }}
      >
        <div className="swp-field">
          <label htmlFor={`swp-replay-since-${webhook.id}`}>Replay events since</label>
          <input
            id={`swp-replay-since-${webhook.id}`}
            type="datetime-local"
            value={since}
            onChange={(e) => {
              setSince(e.target.value);
              setCount(null);
            }}
          />
        </div>
        <button type="submit" disabled={busy || !instant}>
          Count events to replay
        </button>
      </form>
      {count && count.since === since ? (
        <div role="status">
          <p>
            {count.n === 0
              ? "Nothing to replay since then: every event reached this endpoint or is still being delivered."
              : `${count.n} ${count.n === 1 ? "event" : "events"} will be sent again to this endpoint.`}
          </p>
          {count.n > 0 ? (
            <button
              type="button"
              className="swp-primary"
              disabled={busy || !webhook.is_active}
              onClick={() =>
                run(async () => {
                  setDone(await api.replay(webhook.id, instant!));
                  setCount(null);
                })
              }
            >
              {`Replay ${count.n} ${count.n === 1 ? "event" : "events"}`}
            </button>
          ) : null}
          {!webhook.is_active && count.n > 0 ? <p className="swp-hint">Enable the endpoint to replay.</p> : null}
        </div>
      ) : null}
      {done !== null ? (
        <Notice>
          Replayed {done} {done === 1 ? "event" : "events"}: they appear in the deliveries below.
        </Notice>
      ) : null}
      <ErrorMessage error={error} what="Replay" />
    </section>
  );
}

// One delivery: its state (and, on an ordered endpoint, the delivery it waits for), the
// payload as sent, the headers as sent (derived, signature redacted), and every attempt
// with status, duration, response body and error. Redeliver sends the same event again as
// a new delivery; cancel ends a pending one (e.g. the head of an ordered key that keeps
// failing, so that the ones behind it go).
import { useState } from "react";
import type { DeliveryWithAttempts, WebhookDeliveryAttempt } from "../../client.ts";
import { CodeBlock, ConfirmDialog, DeliveryStateBadge, ErrorMessage, Loading, Notice } from "../components.tsx";
import { isNotVisible, PortalLink, useLoad, usePortal } from "../context.tsx";
import { cancelDeliveryError } from "../logic/form-errors.ts";
import { formatDuration, formatTime } from "../logic/format.ts";
import { headersAsSent } from "../logic/headers.ts";
import { WaitingFor } from "./DeliveriesView.tsx";
import { NotFound } from "./NotFound.tsx";

export function DeliveryView({ id }: { id: string }) {
  const { api, pollIntervalMs } = usePortal();
  const [pending, setPending] = useState(true);
  const loaded = useLoad(
    async () => {
      const delivery = await api.getDelivery(id);
      setPending(delivery.state === "pending");
      return delivery;
    },
    `delivery-${id}`,
    pending ? pollIntervalMs : 0,
  );
  if (loaded.error && isNotVisible(loaded.error)) return <NotFound what="delivery" />;
  return (
    <section aria-labelledby="swp-delivery-title">
      <h2 id="swp-delivery-title">Delivery</h2>
      {loaded.loading && !loaded.data ? <Loading what="the delivery" /> : null}
      <ErrorMessage error={loaded.error} what="Could not load the delivery" />
      {loaded.data ? <DeliveryDetails delivery={loaded.data} onChange={loaded.reload} /> : null}
    </section>
  );
}

function DeliveryDetails({ delivery, onChange }: { delivery: DeliveryWithAttempts; onChange: () => void }) {
  const { api, report } = usePortal();
  const [redelivered, setRedelivered] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const [cancelled, setCancelled] = useState(false);
  const [cancelError, setCancelError] = useState<string | null>(null);
  // null: the endpoint was deleted (a delete leaves the log's webhook_id alone, or, for
  // endpoints deleted before 20261130120000, cleared it).
  const endpoint = useLoad(
    () =>
      delivery.webhook_id
        ? api.getWebhook(delivery.webhook_id).catch((error: unknown) => {
          if (isNotVisible(error)) return null;
          throw error;
        })
        : Promise.resolve(null),
    `delivery-endpoint-${delivery.webhook_id ?? "none"}`,
  );
  const endpointDeleted = endpoint.data === null;
  const lastAttempt: WebhookDeliveryAttempt | null = delivery.attempts[delivery.attempts.length - 1] ?? null;

  const redeliver = async () => {
    setBusy(true);
    setError(null);
    try {
      setRedelivered(await api.redeliver(delivery.id));
      onChange();
    } catch (err) {
      report(err);
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const cancel = async () => {
    setBusy(true);
    setCancelError(null);
    setCancelled(false);
    try {
      await api.cancelDelivery(delivery.id);
      setCancelled(true);
    } catch (err) {
      report(err);
      setCancelError(cancelDeliveryError(err));
    } finally {
      setConfirmCancel(false);
      setBusy(false);
      onChange(); // what it is now, cancelled or not
    }
  };

  return (
    <>
      <dl className="swp-facts">
        <dt>Delivery id (webhook-id)</dt>
        <dd>
          <code>{delivery.id}</code>
        </dd>
        <dt>State</dt>
        <dd>
          <DeliveryStateBadge state={delivery.state} />
        </dd>
        <dt>Endpoint</dt>
        <dd>
          {delivery.webhook_id && !endpointDeleted ? (
            <PortalLink to={{ page: "endpoint", id: delivery.webhook_id }} className="swp-url">
              {endpoint.data?.url ?? delivery.webhook_id}
            </PortalLink>
          ) : (
            "(deleted)"
          )}
        </dd>
        <dt>Trigger type</dt>
        <dd>{delivery.event.trigger_type}</dd>
        <dt>Created</dt>
        <dd>{formatTime(delivery.created_at)}</dd>
        {delivery.waiting_for ? (
          <>
            <dt>Waiting</dt>
            <dd>
              <WaitingFor id={delivery.waiting_for} />
              <div className="swp-muted">
                Its endpoint receives these events in order: this one goes when that one has succeeded, failed for good or
                been cancelled.
              </div>
            </dd>
          </>
        ) : null}
        <dt>{delivery.state === "pending" ? "Next attempt" : "Completed"}</dt>
        <dd>
          {delivery.state !== "pending"
            ? formatTime(delivery.completed_at)
            : delivery.waiting_for
              ? "when the delivery it waits for has ended"
              : formatTime(delivery.next_attempt_at)}
        </dd>
        <dt>Attempts</dt>
        <dd>{delivery.attempt_count}</dd>
        {delivery.state === "cancelled" && delivery.last_error ? (
          <>
            <dt>Why cancelled</dt>
            <dd className="swp-pre-wrap">{delivery.last_error}</dd>
          </>
        ) : null}
        {delivery.redelivery_of ? (
          <>
            <dt>Redelivery of</dt>
            <dd>
              <PortalLink to={{ page: "delivery", id: delivery.redelivery_of }}>{delivery.redelivery_of}</PortalLink>
            </dd>
          </>
        ) : null}
      </dl>

      <div className="swp-actions">
        <button type="button" onClick={redeliver} disabled={busy || endpointDeleted}>
          Redeliver
        </button>
        {delivery.state === "pending" ? (
          <button type="button" className="swp-danger" onClick={() => setConfirmCancel(true)} disabled={busy}>
            Cancel delivery…
          </button>
        ) : null}
      </div>
      {cancelled ? (
        <Notice>
          Cancelled: it is not sent again.
        </Notice>
      ) : null}
      {cancelError ? (
        <p className="swp-error" role="alert">
          {cancelError}
        </p>
      ) : null}
      {/* Stays mounted while open even if the delivery ends meanwhile (the page refreshes itself). */}
      <ConfirmDialog
        open={confirmCancel}
        title="Cancel this delivery?"
        confirmLabel="Cancel delivery"
        dismissLabel="Keep it"
        danger
        busy={busy}
        onCancel={() => setConfirmCancel(false)}
        onConfirm={cancel}
      >
        <p>
          It is not attempted again (an attempt already under way still finishes and is logged). On an ordered endpoint, the
          next delivery of the same process goes at once. You can redeliver it later.
        </p>
      </ConfirmDialog>
      {redelivered ? (
        <Notice>
          Sent again as a new delivery: <PortalLink to={{ page: "delivery", id: redelivered }}>{redelivered}</PortalLink>
        </Notice>
      ) : null}
      <ErrorMessage error={error} what="Could not redeliver" />

      <h3>Payload</h3>
      <p className="swp-hint">The JSON body as stored; it is sent compact (without the indentation).</p>
      <CodeBlock value={delivery.event.payload} label="Payload" />

      <h3>Headers as sent</h3>
      <p className="swp-hint">
        Derived from what is stored (headers themselves are not): the signature is never shown, and webhook-timestamp is
        reconstructed from {lastAttempt ? "the last attempt" : "the attempt, once there is one"}.
      </p>
      <table className="swp-table">
        <caption className="swp-visually-hidden">Headers as sent{lastAttempt ? " with the last attempt" : ""}</caption>
        <thead>
          <tr>
            <th scope="col">Header</th>
            <th scope="col">Value</th>
            <th scope="col">Note</th>
          </tr>
        </thead>
        <tbody>
          {headersAsSent(delivery, lastAttempt).map((h) => (
            <tr key={h.name}>
              <th scope="row">
                <code>{h.name}</code>
              </th>
              <td>
                <code>{h.value}</code>
              </td>
              <td className="swp-muted">{h.note}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h3>Attempts</h3>
      {delivery.attempts.length === 0 ? <p>No attempt yet.</p> : <AttemptTable attempts={delivery.attempts} />}
    </>
  );
}

function AttemptTable({ attempts }: { attempts: WebhookDeliveryAttempt[] }) {
  return (
    <div className="swp-scroll">
      <table className="swp-table">
        <caption className="swp-visually-hidden">Attempts, first to last</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">When</th>
            <th scope="col">Outcome</th>
            <th scope="col">HTTP status</th>
            <th scope="col">Duration</th>
            <th scope="col">Error</th>
            <th scope="col">Response body</th>
          </tr>
        </thead>
        <tbody>
          {attempts.map((a) => (
            <tr key={a.id}>
              <th scope="row">{a.attempt_number}</th>
              <td>{formatTime(a.created_at)}</td>
              <td>
                <DeliveryStateBadge state={a.outcome} />
              </td>
              <td>{a.status ?? "—"}</td>
              <td>{formatDuration(a.duration_ms)}</td>
              <td className="swp-pre-wrap">{a.error ?? "—"}</td>
              <td>
                {a.response_body ? (
                  <details>
                    <summary>{`Response body of attempt ${a.attempt_number} (${a.response_body.length} characters)`}</summary>
                    <CodeBlock value={a.response_body} label={`Response body of attempt ${a.attempt_number}`} />
                  </details>
                ) : (
                  "—"
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// The deliveries log: filters (endpoint, state, trigger type, time range), newest first,
// keyset pages (older/newer) that cost the same at any depth. The first page refreshes
// itself, so a test event shows up without a reload.
import { useId, useState } from "react";
import type { DeliveryListItem, DeliveryState, Webhook, WebhookTriggerType } from "../../client.ts";
import { DeliveryStateBadge, ErrorMessage, Loading } from "../components.tsx";
import { PortalLink, useLoad, usePortal } from "../context.tsx";
import { endpointLabel, formatTime, fromLocalInput, shortId, toLocalInput } from "../logic/format.ts";
import { currentCursor, FIRST_PAGE, hasNewer, newer, older, pageNumber, type Pager } from "../logic/pager.ts";
import { STATES, type LogFilter } from "../logic/route.ts";

export function DeliveriesView({ filter }: { filter: LogFilter }) {
  const { api, navigate } = usePortal();
  const catalogue = useLoad(() => Promise.all([api.listWebhooks(), api.listTriggerTypes()]), "log-catalogue");
  const [webhooks, types] = catalogue.data ?? [[], []];
  return (
    <section aria-labelledby="swp-log-title">
      <h2 id="swp-log-title">Deliveries</h2>
      <ErrorMessage error={catalogue.error} what="Could not load the endpoints" />
      <LogFilters filter={filter} webhooks={webhooks} types={types} onChange={(f) => navigate({ page: "deliveries", filter: f })} />
      <DeliveryLog filter={filter} webhooks={catalogue.data ? webhooks : null} pageSize={50} />
    </section>
  );
}

function LogFilters({
  filter,
  webhooks,
  types,
  onChange,
}: {
  filter: LogFilter;
  webhooks: Webhook[];
  types: WebhookTriggerType[];
  onChange: (filter: LogFilter) => void;
}) {
  const id = useId();
  const set = (patch: Partial<LogFilter>) => {
    const next: LogFilter = { ...filter, ...patch };
    for (const key of Object.keys(next) as (keyof LogFilter)[]) if (!next[key]) delete next[key];
    onChange(next);
  };
  const instant = (value: string) => fromLocalInput(value)?.toISOString();
  return (
    <form className="swp-filters" aria-label="Filter deliveries" onSubmit={(e) => e.preventDefault()}>
      <div className="swp-field">
        <label htmlFor={`${id}-endpoint`}>Endpoint</label>
        <select id={`${id}-endpoint`} value={filter.webhookId ?? ""} onChange={(e) => set({ webhookId: e.target.value || undefined })}>
          <option value="">All endpoints</option>
          {filter.webhookId && !webhooks.some((w) => w.id === filter.webhookId) ? (
            <option value={filter.webhookId}>{filter.webhookId}</option>
          ) : null}
          {webhooks.map((w) => (
            <option key={w.id} value={w.id}>
              {w.url} ({w.trigger_type})
            </option>
          ))}
        </select>
      </div>
      <div className="swp-field">
        <label htmlFor={`${id}-state`}>State</label>
        <select id={`${id}-state`} value={filter.state ?? ""} onChange={(e) => set({ state: (e.target.value || undefined) as DeliveryState | undefined })}>
          <option value="">Any state</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div className="swp-field">
        <label htmlFor={`${id}-type`}>Trigger type</label>
        <select id={`${id}-type`} value={filter.triggerType ?? ""} onChange={(e) => set({ triggerType: e.target.value || undefined })}>
          <option value="">Any trigger type</option>
          {types.map((t) => (
            <option key={t.name} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
      </div>
      <div className="swp-field">
        <label htmlFor={`${id}-since`}>Created from</label>
        <input
          id={`${id}-since`}
          type="datetime-local"
          value={filter.since ? toLocalInput(new Date(filter.since)) : ""}
          onChange={(e) => set({ since: instant(e.target.value) })}
        />
      </div>
      <div className="swp-field">
        <label htmlFor={`${id}-until`}>Created before</label>
        <input
          id={`${id}-until`}
          type="datetime-local"
          value={filter.until ? toLocalInput(new Date(filter.until)) : ""}
          onChange={(e) => set({ until: instant(e.target.value) })}
        />
      </div>
      {Object.keys(filter).length > 0 ? (
        <div className="swp-field swp-field-end">
          <button type="button" onClick={() => onChange({})}>
            Clear filters
          </button>
        </div>
      ) : null}
    </form>
  );
}

/** A page of the log for a filter, with older/newer buttons. Also used on an endpoint's page. */
export function DeliveryLog({
  filter,
  webhooks,
  pageSize,
  title = "Deliveries",
}: {
  filter: LogFilter;
  /** The company's endpoints; null while they load. */
  webhooks: Webhook[] | null;
  pageSize: number;
  title?: string;
}) {
  const { api, companyId, pollIntervalMs } = usePortal();
  const filterKey = JSON.stringify(filter);
  // The pages walked belong to one filter: another filter starts from the newest page.
  const [walked, setWalked] = useState<{ filterKey: string; pager: Pager }>({ filterKey, pager: FIRST_PAGE });
  const pager = walked.filterKey === filterKey ? walked.pager : FIRST_PAGE;
  const setPager = (next: Pager) => setWalked({ filterKey, pager: next });
  const cursor = currentCursor(pager);
  const page = useLoad(
    () =>
      api.listDeliveries({
        companyId,
        webhookId: filter.webhookId,
        state: filter.state,
        triggerType: filter.triggerType,
        since: filter.since,
        until: filter.until,
        after: cursor,
        limit: pageSize,
        count: false,
      }),
    `${filterKey}|${cursor ?? ""}`,
    // Only the newest page changes by itself; older pages stay put while you read them.
    cursor === undefined ? pollIntervalMs : 0,
  );
  const urls = webhooks && new Map(webhooks.map((w) => [w.id, w.url]));

  return (
    <div className="swp-log">
      {page.loading && !page.data ? <Loading what="deliveries" /> : null}
      <ErrorMessage error={page.error} what="Could not load the deliveries" />
      {page.data ? <DeliveryTable items={page.data.items} urls={urls} title={title} /> : null}
      <nav className="swp-pager" aria-label={`${title} pages`}>
        <button type="button" onClick={() => setPager(newer(pager))} disabled={!hasNewer(pager)}>
          Newer
        </button>
        <span className="swp-muted">Page {pageNumber(pager)}</span>
        <button type="button" onClick={() => setPager(older(pager, page.data?.nextCursor ?? null))} disabled={!page.data?.nextCursor}>
          Older
        </button>
      </nav>
    </div>
  );
}

/** "waiting for delivery 3a7f2c91", linking to it: the delivery of its ordering key that goes first (public.waiting_for). */
export function WaitingFor({ id }: { id: string }) {
  return (
    <>
      waiting for <PortalLink to={{ page: "delivery", id }}>{`delivery ${shortId(id)}`}</PortalLink>
    </>
  );
}

function DeliveryTable({ items, urls, title }: { items: DeliveryListItem[]; urls: Map<string, string> | null; title: string }) {
  if (items.length === 0) return <p>No deliveries match.</p>;
  return (
    <div className="swp-scroll">
      <table className="swp-table">
        <caption className="swp-visually-hidden">{title}, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Created</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Trigger type</th>
            <th scope="col">State</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last status</th>
            <th scope="col">Next attempt / done</th>
          </tr>
        </thead>
        <tbody>
          {items.map((d) => (
            <tr key={d.id}>
              <th scope="row">
                <PortalLink to={{ page: "delivery", id: d.id }}>{formatTime(d.created_at)}</PortalLink>
              </th>
              <td className="swp-url">{endpointLabel(d.webhook_id, urls)}</td>
              <td>{d.trigger_type}</td>
              <td>
                <DeliveryStateBadge state={d.state} />
              </td>
              <td>{d.attempt_count}</td>
              <td>{d.last_status ?? (d.last_error ? "error" : "—")}</td>
              <td>
                {d.state !== "pending" ? (
                  formatTime(d.completed_at)
                ) : d.waiting_for ? (
                  <WaitingFor id={d.waiting_for} />
                ) : (
                  formatTime(d.next_attempt_at)
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

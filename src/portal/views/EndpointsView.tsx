// The company's endpoints: state (public.webhook_endpoint_health: healthy, failing, circuit
// open, disabled), the last attempt's status, and the last 24 hours at a glance.
import type { EndpointStats, WebhookWithHealth } from "../../client.ts";
import { ErrorMessage, LastOutcome, Loading, Notice, StateBadge } from "../components.tsx";
import { PortalLink, useLoad, usePortal } from "../context.tsx";
import { DELIVERY_ORDERS, formatRate } from "../logic/format.ts";
import { EndpointForm } from "./EndpointForm.tsx";

export function EndpointsView({ notice }: { notice?: string | null }) {
  const { api, pollIntervalMs } = usePortal();
  const loaded = useLoad(
    // The endpoints and their health in one request (the health view embedded), cheap
    // enough to refresh at the portal's pace: a circuit opens and closes within seconds.
    () => api.listWebhooksWithHealth(),
    "endpoints",
    pollIntervalMs,
  );
  // The last 24 hours read every delivery of the window: less often.
  const figures = useLoad(
    async () => new Map((await api.endpointStats()).map((s) => [s.webhook_id, s])),
    "endpoint-figures",
    pollIntervalMs * 5,
  );

  return (
    <section aria-labelledby="swp-endpoints-title">
      <div className="swp-heading-row">
        <h2 id="swp-endpoints-title">Endpoints</h2>
        <PortalLink to={{ page: "new-endpoint" }} className="swp-button swp-primary">
          New endpoint
        </PortalLink>
      </div>
      {notice ? (
        <Notice>
          {notice}
        </Notice>
      ) : null}
      {loaded.loading && !loaded.data ? <Loading what="endpoints" /> : null}
      <ErrorMessage error={loaded.error} what="Could not load the endpoints" />
      <ErrorMessage error={figures.error} what="Could not load the last 24 hours' figures" />
      {loaded.data ? <EndpointTable webhooks={loaded.data} stats={figures.data} /> : null}
    </section>
  );
}

function EndpointTable({
  webhooks,
  stats,
}: {
  webhooks: WebhookWithHealth[];
  /** Undefined while the figures load. */
  stats: Map<string, EndpointStats> | undefined;
}) {
  if (webhooks.length === 0) {
    return <p>No endpoints yet. Create one to start receiving events.</p>;
  }
  return (
    <div className="swp-scroll">
      <table className="swp-table">
        <caption className="swp-visually-hidden">Endpoints, with the deliveries of the last 24 hours</caption>
        <thead>
          <tr>
            <th scope="col">Endpoint</th>
            <th scope="col">Trigger type</th>
            <th scope="col">State</th>
            <th scope="col">Last attempt</th>
            <th scope="col">Success rate (24 h)</th>
            <th scope="col">Deliveries (24 h)</th>
          </tr>
        </thead>
        <tbody>
          {webhooks.map((w) => {
            const s = stats?.get(w.id);
            return (
              <tr key={w.id}>
                <th scope="row">
                  <PortalLink to={{ page: "endpoint", id: w.id }} className="swp-url">
                    {w.url}
                  </PortalLink>
                  {w.description ? <div className="swp-muted swp-description">{w.description}</div> : null}
                </th>
                <td>
                  {w.trigger_type}
                  {w.delivery_order === "ordered" ? <div className="swp-muted">{DELIVERY_ORDERS.ordered.label} delivery</div> : null}
                </td>
                <td>
                  <StateBadge webhook={w} health={w.health} />
                </td>
                <td>
                  <LastOutcome health={w.health} />
                </td>
                <td>{formatRate(s?.success_rate)}</td>
                <td>{s ? s.deliveries : stats ? 0 : "—"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function NewEndpointView() {
  const { api, companyId, navigate } = usePortal();
  const types = useLoad(() => api.listTriggerTypes(), "trigger-types");
  return (
    <section aria-labelledby="swp-new-endpoint-title">
      <h2 id="swp-new-endpoint-title">New endpoint</h2>
      {types.loading && !types.data ? <Loading what="trigger types" /> : null}
      <ErrorMessage error={types.error} what="Could not load the trigger types" />
      {types.data ? (
        <EndpointForm
          triggerTypes={types.data}
          submitLabel="Create endpoint"
          onSubmit={async (values) => {
            const created = await api.createWebhook({
              companyId,
              url: values.url,
              triggerType: values.triggerType,
              description: values.description.trim() === "" ? null : values.description,
              deliveryOrder: values.deliveryOrder,
              maxConcurrentRequests: values.maxConcurrentRequests,
              maxRequestsPerSecond: values.maxRequestsPerSecond,
            });
            navigate({ page: "endpoint", id: created.id });
          }}
          onCancel={() => navigate({ page: "endpoints" })}
        />
      ) : null}
    </section>
  );
}

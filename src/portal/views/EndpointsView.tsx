// The company's endpoints: state, last status, and the last 24 hours at a glance.
import type { EndpointStats, Webhook } from "../../client.ts";
import { ErrorMessage, Loading, StateBadge } from "../components.tsx";
import { PortalLink, useLoad, usePortal } from "../context.tsx";
import { formatRate, lastStatus } from "../logic/format.ts";
import { EndpointForm } from "./EndpointForm.tsx";

export function EndpointsView({ notice }: { notice?: string | null }) {
  const { api, pollIntervalMs } = usePortal();
  const loaded = useLoad(
    async () => {
      const [webhooks, stats] = await Promise.all([api.listWebhooks(), api.endpointStats()]);
      return { webhooks, stats: new Map(stats.map((s) => [s.webhook_id, s])) };
    },
    "endpoints",
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
        <p className="swp-notice" role="status">
          {notice}
        </p>
      ) : null}
      {loaded.loading && !loaded.data ? <Loading what="endpoints" /> : null}
      <ErrorMessage error={loaded.error} what="Could not load the endpoints" />
      {loaded.data ? <EndpointTable webhooks={loaded.data.webhooks} stats={loaded.data.stats} /> : null}
    </section>
  );
}

function EndpointTable({ webhooks, stats }: { webhooks: Webhook[]; stats: Map<string, EndpointStats> }) {
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
            <th scope="col">Last status</th>
            <th scope="col">Success rate (24 h)</th>
            <th scope="col">Deliveries (24 h)</th>
          </tr>
        </thead>
        <tbody>
          {webhooks.map((w) => {
            const s = stats.get(w.id);
            return (
              <tr key={w.id}>
                <th scope="row">
                  <PortalLink to={{ page: "endpoint", id: w.id }} className="swp-url">
                    {w.url}
                  </PortalLink>
                  {w.description ? <div className="swp-muted swp-description">{w.description}</div> : null}
                </th>
                <td>{w.trigger_type}</td>
                <td>
                  <StateBadge webhook={w} />
                </td>
                <td>{lastStatus(s)}</td>
                <td>{formatRate(s?.success_rate)}</td>
                <td>{s ? s.deliveries : 0}</td>
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
            });
            navigate({ page: "endpoint", id: created.id });
          }}
          onCancel={() => navigate({ page: "endpoints" })}
        />
      ) : null}
    </section>
  );
}

// The event catalogue: every trigger type an endpoint can subscribe to, what it means, and
// an example of the body it receives (webhook_trigger_types.example_payload).
import { CodeBlock, ErrorMessage, Loading } from "../components.tsx";
import { useLoad, usePortal } from "../context.tsx";

export function CatalogueView() {
  const { api } = usePortal();
  const types = useLoad(() => api.listTriggerTypes(), "trigger-types");
  return (
    <section aria-labelledby="swp-catalogue-title">
      <h2 id="swp-catalogue-title">Event types</h2>
      <p className="swp-hint">
        Each delivery is a POST with a JSON body and the Standard Webhooks headers webhook-id, webhook-timestamp and
        webhook-signature. Values below are examples; the shape is what your endpoint receives.
      </p>
      {types.loading && !types.data ? <Loading what="event types" /> : null}
      <ErrorMessage error={types.error} what="Could not load the event types" />
      {types.data?.map((t) => (
        <article key={t.name} className="swp-panel" aria-labelledby={`swp-type-${t.name}`}>
          <h3 id={`swp-type-${t.name}`}>
            <code>{t.name}</code>
          </h3>
          <p>{t.description}</p>
          {t.example_payload ? <CodeBlock value={t.example_payload} label={`Example payload of ${t.name}`} /> : <p className="swp-muted">No example yet.</p>}
        </article>
      ))}
    </section>
  );
}

// Create or edit an endpoint. What the database refuses is shown next to the field it is
// about (endpointFormError), and nothing is created or changed.
import { useId, useState } from "react";
import type { FormEvent } from "react";
import type { DeliveryOrder, Webhook, WebhookTriggerType } from "../../client.ts";
import { DELIVERY_ORDERS } from "../logic/format.ts";
import {
  endpointFormError,
  type FormError,
  MAX_CONCURRENT_REQUESTS_RULE,
  MAX_REQUESTS_PER_SECOND_RULE,
} from "../logic/form-errors.ts";

export interface EndpointFormValues {
  url: string;
  triggerType: string;
  description: string;
  deliveryOrder: DeliveryOrder;
  /** Null: no limit of the endpoint's own (the deployment's applies). */
  maxConcurrentRequests: number | null;
  /** Null: no rate of the endpoint's own. */
  maxRequestsPerSecond: number | null;
}

type LimitField = "maxConcurrentRequests" | "maxRequestsPerSecond";

/** The limit field's text as the number to store: empty is null; anything but digits is refused here. */
function parseLimit(text: string): number | null | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  return /^[0-9]+$/.test(trimmed) ? Number(trimmed) : undefined;
}

export function EndpointForm({
  initial,
  triggerTypes,
  submitLabel,
  onSubmit,
  onCancel,
}: {
  initial?: Pick<Webhook, "url" | "trigger_type" | "description" | "delivery_order" | "max_concurrent_requests" | "max_requests_per_second">;
  triggerTypes: WebhookTriggerType[];
  submitLabel: string;
  onSubmit: (values: EndpointFormValues) => Promise<void>;
  onCancel?: () => void;
}) {
  const id = useId();
  // The limits as typed: parsed (and refused if not whole numbers) on submit.
  const [values, setValues] = useState<Omit<EndpointFormValues, LimitField> & Record<LimitField, string>>({
    url: initial?.url ?? "",
    triggerType: initial?.trigger_type ?? triggerTypes.find((t) => t.name !== "WEBHOOK_TEST")?.name ?? triggerTypes[0]?.name ?? "",
    description: initial?.description ?? "",
    deliveryOrder: initial?.delivery_order ?? "parallel",
    maxConcurrentRequests: initial?.max_concurrent_requests == null ? "" : String(initial.max_concurrent_requests),
    maxRequestsPerSecond: initial?.max_requests_per_second == null ? "" : String(initial.max_requests_per_second),
  });
  const [error, setError] = useState<FormError | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    // Not a number at all: the database would only say "invalid input syntax".
    const limit = parseLimit(values.maxConcurrentRequests);
    if (limit === undefined) {
      setError({ field: "maxConcurrentRequests", message: MAX_CONCURRENT_REQUESTS_RULE });
      return;
    }
    const rate = parseLimit(values.maxRequestsPerSecond);
    if (rate === undefined) {
      setError({ field: "maxRequestsPerSecond", message: MAX_REQUESTS_PER_SECOND_RULE });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSubmit({ ...values, url: values.url.trim(), maxConcurrentRequests: limit, maxRequestsPerSecond: rate });
    } catch (err) {
      setError(endpointFormError(err));
    } finally {
      setBusy(false);
    }
  };

  const fieldError = (field: FormError["field"]) =>
    error && error.field === field ? (
      <p id={`${id}-${field}-error`} className="swp-field-error" role="alert">
        {error.message}
      </p>
    ) : null;
  const described = (field: FormError["field"], hint?: string) => {
    const ids = [hint, error?.field === field ? `${id}-${field}-error` : undefined].filter(Boolean);
    return ids.length ? ids.join(" ") : undefined;
  };

  // A whole number, or empty: typed as text, parsed on submit.
  const limitField = (field: LimitField, label: string, hint: string) => (
    <div className="swp-field">
      <label htmlFor={`${id}-${field}`}>{label}</label>
      <input
        id={`${id}-${field}`}
        name={field}
        type="text"
        inputMode="numeric"
        autoComplete="off"
        value={values[field]}
        onChange={(e) => setValues({ ...values, [field]: e.target.value })}
        aria-invalid={error?.field === field || undefined}
        aria-describedby={described(field, `${id}-${field}-hint`)}
      />
      <p id={`${id}-${field}-hint`} className="swp-hint">
        {hint}
      </p>
      {fieldError(field)}
    </div>
  );

  return (
    <form className="swp-form" onSubmit={submit} noValidate>
      <div className="swp-field">
        <label htmlFor={`${id}-url`}>Endpoint URL</label>
        <input
          id={`${id}-url`}
          name="url"
          type="text"
          inputMode="url"
          autoComplete="off"
          spellCheck={false}
          value={values.url}
          onChange={(e) => setValues({ ...values, url: e.target.value })}
          aria-invalid={error?.field === "url" || undefined}
          aria-describedby={described("url", `${id}-url-hint`)}
          required
        />
        <p id={`${id}-url-hint`} className="swp-hint">
          Where Serial POSTs each event, e.g. https://erp.example.com/serial-webhooks
        </p>
        {fieldError("url")}
      </div>
      <div className="swp-field">
        <label htmlFor={`${id}-type`}>Trigger type</label>
        <select
          id={`${id}-type`}
          name="triggerType"
          value={values.triggerType}
          onChange={(e) => setValues({ ...values, triggerType: e.target.value })}
          aria-invalid={error?.field === "triggerType" || undefined}
          aria-describedby={described("triggerType")}
        >
          {triggerTypes.map((t) => (
            <option key={t.name} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
        {fieldError("triggerType")}
      </div>
      <div className="swp-field">
        <label htmlFor={`${id}-description`}>Description (optional)</label>
        <textarea
          id={`${id}-description`}
          name="description"
          rows={2}
          value={values.description}
          onChange={(e) => setValues({ ...values, description: e.target.value })}
          aria-invalid={error?.field === "description" || undefined}
          aria-describedby={described("description")}
        />
        {fieldError("description")}
      </div>
      <fieldset className="swp-field swp-choices" aria-describedby={described("deliveryOrder")}>
        <legend>Delivery order</legend>
        {(Object.keys(DELIVERY_ORDERS) as DeliveryOrder[]).map((order) => (
          <div key={order} className="swp-choice">
            <input
              id={`${id}-order-${order}`}
              type="radio"
              name="deliveryOrder"
              value={order}
              checked={values.deliveryOrder === order}
              onChange={() => setValues({ ...values, deliveryOrder: order })}
              aria-describedby={`${id}-order-${order}-hint`}
            />
            <label htmlFor={`${id}-order-${order}`}>{DELIVERY_ORDERS[order].label}</label>
            <p id={`${id}-order-${order}-hint`} className="swp-hint">
              {DELIVERY_ORDERS[order].promise}
            </p>
          </div>
        ))}
        {initial && initial.delivery_order !== values.deliveryOrder ? (
          <p className="swp-hint" role="status">
            {values.deliveryOrder === "ordered"
              ? "Applies to deliveries created from now on; those already pending keep going side by side."
              : "Every delivery held back for its turn is released at once."}
          </p>
        ) : null}
        {fieldError("deliveryOrder")}
      </fieldset>
      {limitField(
        "maxConcurrentRequests",
        "Most requests at once (optional)",
        "For a receiver that can only take a few requests at a time: Serial never has more than this many in flight to it. Empty: the deployment's limit.",
      )}
      {limitField(
        "maxRequestsPerSecond",
        "Most requests per second (optional)",
        "For a receiver behind a rate limit: Serial sends it this many requests a second at most, on average, in small bursts. Empty: no limit.",
      )}
      {error && error.field === null ? (
        <p className="swp-error" role="alert">
          {error.message}
        </p>
      ) : null}
      <div className="swp-actions">
        {onCancel ? (
          <button type="button" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
        ) : null}
        <button type="submit" className="swp-primary" disabled={busy}>
          {submitLabel}
        </button>
      </div>
    </form>
  );
}

// Small building blocks of the portal. Everything a tenant or a receiver controls is
// rendered as React text (escaped), never as markup.
import { useEffect, useId, useRef, useState } from "react";
import type { ReactNode } from "react";
import { WebhooksError } from "../errors.ts";
import { endpointState, formatTime, lastOutcome, type HealthFacts } from "./logic/format.ts";
import type { Webhook } from "../client.ts";

export function ErrorMessage({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  const text = error instanceof WebhooksError || error instanceof Error ? error.message : String(error);
  return (
    <p className="swp-error" role="alert">
      {what ? `${what}: ` : ""}
      {text}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="swp-muted" role="status">
      Loading {what}…
    </p>
  );
}

export function Notice({ children }: { children: ReactNode }) {
  return (
    <p className="swp-notice" role="status">
      {children}
    </p>
  );
}

/** An endpoint's state: a badge (Healthy, Failing, Circuit open, Disabled) and a sentence saying since when and what next. */
export function StateBadge({
  webhook,
  health,
}: {
  webhook: Pick<Webhook, "is_active" | "disabled_reason" | "disabled_at">;
  health: HealthFacts | null | undefined;
}) {
  const state = endpointState(webhook, health);
  return (
    <span className="swp-state">
      <span className={`swp-badge swp-tone-${state.tone}`}>{state.label}</span>
      {state.detail ? <span className="swp-muted swp-state-detail"> {state.detail}</span> : null}
    </span>
  );
}

/** The last attempt's HTTP status, and its error when that says more (e.g. "connection refused"). */
export function LastOutcome({ health, withTime }: { health: HealthFacts | null | undefined; withTime?: boolean }) {
  const last = lastOutcome(health);
  return (
    <>
      {last.status}
      {withTime && health?.last_attempt_at ? <span className="swp-muted">{` at ${formatTime(health.last_attempt_at)}`}</span> : null}
      {last.error ? <div className="swp-muted swp-pre-wrap">{last.error}</div> : null}
    </>
  );
}

export function DeliveryStateBadge({ state }: { state: string }) {
  const tone = state === "succeeded" ? "ok" : state === "pending" ? "info" : state === "failed" ? "bad" : "warn";
  return <span className={`swp-badge swp-tone-${tone}`}>{state}</span>;
}

/** Pretty JSON (or the raw text when it is not JSON), as text. */
export function CodeBlock({ value, label }: { value: unknown; label: string }) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return (
    <pre className="swp-code" aria-label={label} tabIndex={0}>
      {text}
    </pre>
  );
}

/**
 * A modal confirmation (the native <dialog>: focus moves in and is trapped, Escape cancels).
 * `confirmLabel` names the button that does it; the dialog is labelled by its title.
 */
export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  dismissLabel = "Cancel",
  danger,
  busy,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  /** Names the button that closes it doing nothing (default "Cancel"). */
  dismissLabel?: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
    } else if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className="swp-dialog"
      aria-labelledby={titleId}
      onCancel={(event) => {
        event.preventDefault();
        onCancel();
      }}
    >
      <h2 id={titleId}>{title}</h2>
      <div>{children}</div>
      <div className="swp-actions">
        <button type="button" onClick={onCancel} disabled={busy}>
          {dismissLabel}
        </button>
        <button type="button" className={danger ? "swp-danger" : "swp-primary"} onClick={onConfirm} disabled={busy}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

/** Copies text to the clipboard; says whether it worked. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<"" | "copied" | "failed">("");
  return (
    <>
      <button
        type="button"
        onClick={() => {
          const clipboard = typeof navigator !== "undefined" ? navigator.clipboard : undefined;
          (clipboard ? clipboard.writeText(text) : Promise.reject(new Error("no clipboard"))).then(
            () => setDone("copied"),
            () => setDone("failed"),
          );
        }}
      >
        {label}
      </button>
      <span role="status" className="swp-muted">
        {done === "copied" ? " Copied." : done === "failed" ? " Could not copy: select the text and copy it." : ""}
      </span>
    </>
  );
}

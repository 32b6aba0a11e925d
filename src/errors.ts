import type { PostgrestError } from "@supabase/supabase-js";
import { URL_RULES as GENERATED_URL_RULES } from "./database.rules.ts";

/** What went wrong, in terms a caller can branch on. */
export type WebhooksErrorKind =
  | "unauthenticated" // no valid JWT (anon, expired or forged token)
  | "permission_denied" // signed in, but not an active ADMIN of that company
  | "not_found" // no such row, or a row RLS hides from you (never distinguishable, by design)
  | "invalid_url" // the url breaks a webhooks_url_* rule
  | "unknown_trigger_type" // trigger_type is not a row of webhook_trigger_types
  | "duplicate" // same (company, trigger type, url) already registered
  | "disabled" // the webhook is disabled; enable it first
  | "already_ended" // the delivery has already ended (succeeded, failed or cancelled)
  | "invalid_input" // another bad argument (message says which)
  | "unknown";

/** The sentence for each named url rule, as the database states it (generated); the portal shows them next to the field. */
export const URL_RULES: Readonly<Record<string, string>> = GENERATED_URL_RULES;

/** An error from the webhooks API: never swallowed, always with a kind and the server's words. */
export class WebhooksError extends Error {
  readonly kind: WebhooksErrorKind;
  /** SQLSTATE or PostgREST code (e.g. 42501, 23514, PGRST301). */
  readonly code: string | undefined;
  readonly details: string | undefined;
  readonly hint: string | undefined;
  /** The constraint that rejected the row, when there is one. */
  readonly constraint: string | undefined;

  constructor(kind: WebhooksErrorKind, message: string, source?: Partial<PostgrestError> & { constraint?: string }) {
    super(message);
    this.name = "WebhooksError";
    this.kind = kind;
    this.code = source?.code || undefined;
    this.details = source?.details || undefined;
    this.hint = source?.hint || undefined;
    this.constraint = source?.constraint;
  }
}

function constraintIn(error: Partial<PostgrestError>): string | undefined {
  const text = `${error.message ?? ""} ${error.details ?? ""}`;
  return /constraint "([^"]+)"/.exec(text)?.[1] ?? Object.keys(URL_RULES).find((name) => text.includes(name));
}

/** Maps a PostgREST/Postgres error to a WebhooksError with a kind and a readable message. */
export function toWebhooksError(error: Partial<PostgrestError>, what = "request"): WebhooksError {
  const code = error.code ?? "";
  const message = error.message ?? "unknown error";
  const constraint = constraintIn(error);
  const source = { ...error, constraint };

  if (code.startsWith("PGRST30") || /JWT|JWS/.test(message)) {
    return new WebhooksError("unauthenticated", `${what}: not signed in or the token is invalid (${message})`, source);
  }
  if (code === "42501") {
    return new WebhooksError("permission_denied", `${what}: permission denied (${message})`, source);
  }
  if (code === "PGRST116") {
    return new WebhooksError("not_found", `${what}: not found, or not visible to you`, source);
  }
  const urlRule = constraint === undefined ? undefined : URL_RULES[constraint];
  if (urlRule) {
    return new WebhooksError("invalid_url", `${what}: ${urlRule}`, source);
  }
  if (code === "23503" && /trigger_type|trigger type/.test(`${message} ${error.details ?? ""}`)) {
    return new WebhooksError("unknown_trigger_type", `${what}: unknown trigger type; use one of webhook_trigger_types`, source);
  }
  if (code === "23505") {
    return new WebhooksError("duplicate", `${what}: a webhook for this trigger type and url already exists`, source);
  }
  if (code === "55000" && /has already ended/.test(message)) {
    return new WebhooksError("already_ended", `${what}: ${message}`, source);
  }
  if (code === "55000") {
    return new WebhooksError("disabled", `${what}: ${message}`, source);
  }
  if (code.startsWith("22") || code.startsWith("23") || code === "54000" || code.startsWith("PGRST1")) {
    return new WebhooksError("invalid_input", `${what}: ${message}`, source);
  }
  return new WebhooksError("unknown", `${what}: ${message}`, source);
}

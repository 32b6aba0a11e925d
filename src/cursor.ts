// Keyset cursors for the deliveries log: a page ends at a (created_at, id) pair, and the
// next page starts strictly after it in the order created_at desc, id desc. The cursor is
// opaque to callers (base64url of both values), so the order can change without breaking them.
import { WebhooksError } from "./errors.ts";

export interface DeliveryCursor {
  /** created_at exactly as PostgREST returned it (microseconds kept). */
  createdAt: string;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// ISO 8601 with a time and an offset (what PostgREST emits for timestamptz).
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)$/;

function toBase64Url(text: string): string {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return atob(padded);
}

export function encodeDeliveryCursor(row: { created_at: string; id: string }): string {
  return toBase64Url(`${row.created_at}|${row.id}`);
}

/** Throws WebhooksError("invalid_input") for anything this module did not produce. */
export function decodeDeliveryCursor(cursor: string): DeliveryCursor {
  let text = "";
  try {
    text = /^[A-Za-z0-9_-]+$/.test(cursor) ? fromBase64Url(cursor) : "";
  } catch {
    text = "";
  }
  const [createdAt = "", id = "", ...rest] = text.split("|");
  if (rest.length > 0 || !TIMESTAMP.test(createdAt) || !UUID.test(id)) {
    throw new WebhooksError("invalid_input", "list deliveries: `after` must be a nextCursor returned by a previous page");
  }
  return { createdAt, id };
}

/**
 * The PostgREST filters that start a page after the cursor: created_at <= c AND
 * (created_at < c OR id < i). The first bound is what an index range scan can use; the OR
 * only sorts out the rows that share the cursor's timestamp.
 */
export function afterCursorFilters(cursor: DeliveryCursor): { lte: [string, string]; or: string } {
  const at = `"${cursor.createdAt}"`;
  return { lte: ["created_at", cursor.createdAt], or: `created_at.lt.${at},id.lt.${cursor.id}` };
}

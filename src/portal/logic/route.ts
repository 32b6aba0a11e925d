// Where the portal is: a small route type, and its text form (a path plus a query) for
// hosts that keep it in the address bar, like the standalone page does under /portal.
import type { DeliveryState } from "../../client.ts";
import { Constants } from "../../database.types.ts";

export interface LogFilter {
  webhookId?: string;
  state?: DeliveryState;
  triggerType?: string;
  /** ISO instants: created at or after / before. */
  since?: string;
  until?: string;
}

export type Route =
  | { page: "endpoints" }
  | { page: "new-endpoint" }
  | { page: "endpoint"; id: string }
  | { page: "deliveries"; filter: LogFilter }
  | { page: "delivery"; id: string }
  | { page: "event-types" }
  | { page: "not-found" };

export const STATES: readonly DeliveryState[] = Constants.public.Enums.webhook_delivery_state;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TRIGGER_TYPE = /^[A-Z][A-Z0-9_]*$/;

function validInstant(value: string | null): string | undefined {
  if (!value) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}

/** The path (and query) of a route, relative to where the portal is mounted. */
export function routeToPath(route: Route): string {
  switch (route.page) {
    case "endpoints":
      return "/";
    case "new-endpoint":
      return "/endpoints/new";
    case "endpoint":
      return `/endpoints/${encodeURIComponent(route.id)}`;
    case "delivery":
      return `/deliveries/${encodeURIComponent(route.id)}`;
    case "event-types":
      return "/event-types";
    case "not-found":
      return "/not-found";
    case "deliveries": {
      const query = new URLSearchParams();
      const f = route.filter;
      if (f.webhookId) query.set("endpoint", f.webhookId);
      if (f.state) query.set("state", f.state);
      if (f.triggerType) query.set("type", f.triggerType);
      if (f.since) query.set("since", f.since);
      if (f.until) query.set("until", f.until);
      const text = query.toString();
      return text ? `/deliveries?${text}` : "/deliveries";
    }
  }
}

/**
 * The route for a path and query (as routeToPath writes them). Anything else, e.g. an id
 * that is not a uuid, is "not-found"; filter values that are not valid are dropped.
 */
export function pathToRoute(pathname: string, search = ""): Route {
  let parts: string[];
  try {
    parts = pathname.split("/").filter(Boolean).map((p) => decodeURIComponent(p));
  } catch {
    return { page: "not-found" }; // a malformed escape (%E0): no page of ours
  }
  const query = new URLSearchParams(search);
  const [first, second, ...rest] = parts;
  if (rest.length > 0) return { page: "not-found" };
  if (first === undefined) return { page: "endpoints" };
  if (first === "event-types" && second === undefined) return { page: "event-types" };
  if (first === "endpoints") {
    if (second === undefined) return { page: "endpoints" };
    if (second === "new") return { page: "new-endpoint" };
    return UUID.test(second) ? { page: "endpoint", id: second.toLowerCase() } : { page: "not-found" };
  }
  if (first === "deliveries") {
    if (second !== undefined) return UUID.test(second) ? { page: "delivery", id: second.toLowerCase() } : { page: "not-found" };
    const filter: LogFilter = {};
    const endpoint = query.get("endpoint");
    if (endpoint && UUID.test(endpoint)) filter.webhookId = endpoint.toLowerCase();
    const state = query.get("state");
    if (state && (STATES as readonly string[]).includes(state)) filter.state = state as DeliveryState;
    const type = query.get("type");
    if (type && TRIGGER_TYPE.test(type)) filter.triggerType = type;
    const since = validInstant(query.get("since"));
    if (since) filter.since = since;
    const until = validInstant(query.get("until"));
    if (until) filter.until = until;
    return { page: "deliveries", filter };
  }
  return { page: "not-found" };
}

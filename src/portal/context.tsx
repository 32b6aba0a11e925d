// What every view of the portal shares: the typed client, the company being managed, how
// to move to another page, and where errors go (an expired session anywhere signs out).
import { createContext, useCallback, useContext, useEffect, useRef, useState } from "react";
import type { MouseEvent, ReactNode } from "react";
import type { WebhooksClient } from "../client.ts";
import { WebhooksError } from "../errors.ts";
import { routeToPath, type Route } from "./logic/route.ts";

export interface PortalContextValue {
  api: WebhooksClient;
  companyId: string;
  navigate: (route: Route) => void;
  href: (route: Route) => string;
  /** Report an error; an unauthenticated one ends the session screen-wide. */
  report: (error: unknown) => void;
  pollIntervalMs: number;
}

const PortalContext = createContext<PortalContextValue | null>(null);

export function PortalProvider({ value, children }: { value: PortalContextValue; children: ReactNode }) {
  return <PortalContext.Provider value={value}>{children}</PortalContext.Provider>;
}

export function usePortal(): PortalContextValue {
  const value = useContext(PortalContext);
  if (!value) throw new Error("portal views must be rendered inside <WebhooksPortal>");
  return value;
}

export function hrefFor(basePath: string, route: Route): string {
  const path = routeToPath(route);
  return basePath === "" ? `#${path}` : `${basePath.replace(/\/$/, "")}${path}`;
}

/** A link to another page of the portal: a real href, navigated in place. */
export function PortalLink({ to, children, className }: { to: Route; children: ReactNode; className?: string }) {
  const { navigate, href } = usePortal();
  const onClick = (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return (
    <a href={href(to)} onClick={onClick} className={className}>
      {children}
    </a>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads with `load`, again whenever `key` changes, on reload(), and every `pollMs`
 * (0: never) while the page is visible. An answer older than the latest request is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, key: string, pollMs = 0): Loaded<T> {
  const { report } = usePortal();
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean; key: string }>({
    data: undefined,
    error: null,
    loading: true,
    key,
  });
  const latest = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const run = useCallback(
    (quiet: boolean) => {
      const ticket = ++latest.current;
      if (!quiet) setState((s) => ({ ...s, loading: true }));
      loadRef.current().then(
        (data) => {
          if (ticket === latest.current) setState({ data, error: null, loading: false, key });
        },
        (error: unknown) => {
          if (ticket !== latest.current) return;
          report(error);
          // Rows of another key (the previous filter) must not show under this one.
          setState((s) => ({ data: s.key === key ? s.data : undefined, error, loading: false, key }));
        },
      );
    },
    [key, report],
  );

  useEffect(() => {
    run(false);
    if (pollMs <= 0) return;
    const timer = setInterval(() => {
      if (typeof document === "undefined" || document.visibilityState === "visible") run(true);
    }, pollMs);
    return () => {
      clearInterval(timer);
      latest.current++; // drop answers to requests of the previous key
    };
  }, [run, pollMs]);

  // A new key shows "loading", not the previous key's data.
  const stale = state.key !== key;
  return {
    data: stale ? undefined : state.data,
    error: stale ? null : state.error,
    loading: stale || state.loading,
    reload: () => run(true),
  };
}

/**
 * A panel's actions: `busy` while one runs (the panel disables its buttons), its error
 * reported to the host page as it came and kept to show (`describe` may reword it).
 */
export function useAction() {
  const { report } = usePortal();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (action: () => Promise<void>, describe: (error: unknown) => unknown = (error) => error) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      report(err);
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

/** Whether an error means the row is not there for this user (absent, or another company's). */
export function isNotVisible(error: unknown): boolean {
  return error instanceof WebhooksError && (error.kind === "not_found" || error.kind === "permission_denied");
}

// <WebhooksPortal supabase={client} />: the page where a company ADMIN manages webhook
// endpoints and sees every delivery. Built on the typed client (src/client.ts): the
// database decides who sees what (RLS and admin-checked RPCs); the portal only asks
// whether the caller manages webhooks (webhooks_admin_company_id) to choose between the
// pages, a "not allowed" screen and a "signed out" one.
import { useCallback, useEffect, useMemo, useState } from "react";
import type { ReactNode } from "react";
import type { SupabaseClient } from "@supabase/supabase-js";
import { createWebhooksClient } from "../client.ts";
import type { Database } from "../database.types.ts";
import { WebhooksError } from "../errors.ts";
import { hrefFor, PortalLink, PortalProvider, type PortalContextValue } from "./context.tsx";
import type { Route } from "./logic/route.ts";
import { CatalogueView } from "./views/CatalogueView.tsx";
import { DeliveriesView } from "./views/DeliveriesView.tsx";
import { DeliveryView } from "./views/DeliveryView.tsx";
import { EndpointView } from "./views/EndpointView.tsx";
import { EndpointsView, NewEndpointView } from "./views/EndpointsView.tsx";
import { NotFound } from "./views/NotFound.tsx";

export interface WebhooksPortalProps {
  /** A supabase-js client signed in as the user (the portal never needs another key). */
  // Any schema typing is accepted: the portal only uses the webhooks tables and RPCs.
  supabase: SupabaseClient<any, any, any>;
  /** The page to show (controlled). Without it the portal keeps its own. */
  route?: Route;
  /** Called when the user moves to another page (always, controlled or not). */
  onNavigate?: (route: Route) => void;
  /** Where links point: "" (default) makes "#/..." links; e.g. "/settings/webhooks" makes real paths. */
  basePath?: string;
  /** How often open lists refresh themselves, in ms (default 3000; 0 turns it off). */
  pollIntervalMs?: number;
  /** Said on the "signed out" screen, e.g. how to sign in again. */
  signInHint?: ReactNode;
}

type Access = { state: "checking" } | { state: "signed-out" } | { state: "not-allowed" } | { state: "error"; error: unknown } | { state: "ready"; companyId: string };

export function WebhooksPortal({ supabase, route: controlledRoute, onNavigate, basePath = "", pollIntervalMs = 3000, signInHint }: WebhooksPortalProps) {
  const api = useMemo(() => createWebhooksClient(supabase as SupabaseClient<Database>), [supabase]);
  const [access, setAccess] = useState<Access>({ state: "checking" });
  const [ownRoute, setOwnRoute] = useState<Route>({ page: "endpoints" });
  const [notice, setNotice] = useState<string | null>(null);
  const route = controlledRoute ?? ownRoute;

  const check = useCallback(() => {
    api.adminCompanyId().then(
      (companyId) => setAccess(companyId ? { state: "ready", companyId } : { state: "not-allowed" }),
      (error: unknown) =>
        setAccess(error instanceof WebhooksError && error.kind === "unauthenticated" ? { state: "signed-out" } : { state: "error", error }),
    );
  }, [api]);
  useEffect(check, [check]);

  const report = useCallback((error: unknown) => {
    if (error instanceof WebhooksError && error.kind === "unauthenticated") setAccess({ state: "signed-out" });
  }, []);

  const navigate = useCallback(
    (next: Route) => {
      setNotice(null);
      if (controlledRoute === undefined) setOwnRoute(next);
      onNavigate?.(next);
    },
    [controlledRoute, onNavigate],
  );

  if (access.state !== "ready") {
    return (
      <div className="swp-portal">
        <Gate access={access} signInHint={signInHint} />
      </div>
    );
  }

  const context: PortalContextValue = {
    api,
    companyId: access.companyId,
    navigate,
    href: (r) => hrefFor(basePath, r),
    report,
    pollIntervalMs,
  };

  return (
    <PortalProvider value={context}>
      <div className="swp-portal">
        <header className="swp-header">
          <h1>Webhooks</h1>
          <nav aria-label="Webhooks portal">
            <ul>
              <NavItem to={{ page: "endpoints" }} current={["endpoints", "new-endpoint", "endpoint"].includes(route.page)}>
                Endpoints
              </NavItem>
              <NavItem to={{ page: "deliveries", filter: {} }} current={route.page === "deliveries" || route.page === "delivery"}>
                Deliveries
              </NavItem>
              <NavItem to={{ page: "event-types" }} current={route.page === "event-types"}>
                Event types
              </NavItem>
            </ul>
          </nav>
        </header>
        <main className="swp-main">
          <Page
            route={route}
            notice={notice}
            onDeleted={(url) => {
              navigate({ page: "endpoints" });
              setNotice(`Deleted the endpoint ${url}.`);
            }}
          />
        </main>
      </div>
    </PortalProvider>
  );
}

function NavItem({ to, current, children }: { to: Route; current: boolean; children: ReactNode }) {
  return (
    <li aria-current={current ? "page" : undefined}>
      <PortalLink to={to}>{children}</PortalLink>
    </li>
  );
}

function Page({ route, notice, onDeleted }: { route: Route; notice: string | null; onDeleted: (url: string) => void }) {
  switch (route.page) {
    case "endpoints":
      return <EndpointsView notice={notice} />;
    case "new-endpoint":
      return <NewEndpointView />;
    case "endpoint":
      return <EndpointView key={route.id} id={route.id} onDeleted={onDeleted} />;
    case "deliveries":
      return <DeliveriesView filter={route.filter} />;
    case "delivery":
      return <DeliveryView key={route.id} id={route.id} />;
    case "event-types":
      return <CatalogueView />;
    case "not-found":
      return <NotFound what="page" />;
  }
}

function Gate({ access, signInHint }: { access: Exclude<Access, { state: "ready" }>; signInHint?: ReactNode }) {
  switch (access.state) {
    case "checking":
      return (
        <p className="swp-muted" role="status">
          Checking your access…
        </p>
      );
    case "signed-out":
      return (
        <section className="swp-gate" aria-labelledby="swp-gate-title">
          <h1 id="swp-gate-title">Signed out</h1>
          <p>You are not signed in, or your session has expired. Nothing is shown until you sign in again.</p>
          {signInHint ? <p>{signInHint}</p> : null}
        </section>
      );
    case "not-allowed":
      return (
        <section className="swp-gate" aria-labelledby="swp-gate-title">
          <h1 id="swp-gate-title">Not allowed</h1>
          <p>
            Only an active ADMIN of an active company can manage its webhooks. Your account is signed in but is not one, so
            nothing is shown. Ask an ADMIN of your company if you need access.
          </p>
        </section>
      );
    case "error":
      return (
        <section className="swp-gate" aria-labelledby="swp-gate-title">
          <h1 id="swp-gate-title">Could not check your access</h1>
          <p role="alert">{access.error instanceof Error ? access.error.message : String(access.error)}</p>
        </section>
      );
  }
}

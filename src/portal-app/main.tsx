// The standalone portal page, served by the local gateway at SUPABASE_URL/portal. It signs
// in with a user access token passed in the fragment (#access_token=<jwt>, like Supabase's
// implicit flow), takes it out of the address bar at once, and keeps it for this tab only
// (sessionStorage: a reload stays signed in, a closed tab forgets it; never a cookie, so
// no request carries it but the API calls' Authorization header). It talks to the gateway
// it was served by, with the anon key the gateway put in the page.
import { createClient } from "@supabase/supabase-js";
import { StrictMode, useEffect, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
// The built package, as an app would import it (vite.portal.config.mjs points these at dist/).
import { pathToRoute, routeToPath, WebhooksPortal, type Route } from "@serial/webhooks/portal";
import "@serial/webhooks/portal/styles.css";

const BASE = "/portal";

const TOKEN_KEY = "serial-webhooks-portal-token";

function takeAccessToken(): string | null {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const fromLink = fragment.get("access_token");
  if (window.location.hash) {
    // Out of the address bar and the history before anything else runs.
    window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search);
  }
  if (fromLink) {
    window.sessionStorage.setItem(TOKEN_KEY, fromLink);
    return fromLink;
  }
  return window.sessionStorage.getItem(TOKEN_KEY);
}

function currentRoute(): Route {
  const path = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length) : "/";
  return pathToRoute(path, window.location.search);
}

const accessToken = takeAccessToken();
const anonKey = document.querySelector<HTMLMetaElement>('meta[name="serial-webhooks-anon-key"]')?.content ?? "";

function App() {
  const [route, setRoute] = useState<Route>(currentRoute);
  useEffect(() => {
    const onPop = () => setRoute(currentRoute());
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const supabase = useMemo(
    () =>
      createClient(window.location.origin, anonKey, {
        // The user's token, or none at all (the portal then says "signed out").
        accessToken: async () => accessToken ?? anonKey,
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      }),
    [],
  );
  useEffect(() => {
    const titles: Record<Route["page"], string> = {
      endpoints: "Endpoints",
      "new-endpoint": "New endpoint",
      endpoint: "Endpoint",
      deliveries: "Deliveries",
      delivery: "Delivery",
      "event-types": "Event types",
      "not-found": "Not found",
    };
    document.title = `${titles[route.page]} · Serial webhooks`;
  }, [route]);
  return (
    <WebhooksPortal
      supabase={supabase}
      route={route}
      basePath={BASE}
      onNavigate={(next) => {
        window.history.pushState(null, "", BASE + routeToPath(next));
        setRoute(next);
        window.scrollTo(0, 0);
      }}
      signInHint="Open the link that `npm run user` printed, with a fresh token."
    />
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

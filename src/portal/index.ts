// @serial/webhooks/portal: the webhooks portal as a React component. Import its styles once
// (`@serial/webhooks/portal/styles.css`) and render <WebhooksPortal supabase={client} />.
export { WebhooksPortal } from "./WebhooksPortal.tsx";
export type { WebhooksPortalProps } from "./WebhooksPortal.tsx";
export { pathToRoute, routeToPath } from "./logic/route.ts";
export type { LogFilter, Route } from "./logic/route.ts";

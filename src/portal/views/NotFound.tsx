// The one answer for a row that does not exist and for a row of another company: the
// database does not tell them apart, and neither does the page.
import { PortalLink } from "../context.tsx";

export function NotFound({ what }: { what: string }) {
  return (
    <section aria-labelledby="swp-not-found-title" className="swp-gate">
      <h2 id="swp-not-found-title">Not found</h2>
      <p>
        This {what} does not exist, or it is not yours to see. Nothing of it is shown.
      </p>
      <p>
        <PortalLink to={{ page: "endpoints" }}>Back to your endpoints</PortalLink>
      </p>
    </section>
  );
}

// Deliveries per hour by outcome over the last 24 hours: stacked bars in plain SVG (no chart
// library), each bar titled with its numbers, and the same numbers as a table for anyone
// who would rather read than look.
import type { HourlyOutcomes } from "../../client.ts";
import { describeBucket, hourlyBuckets, niceMax, OUTCOME_LABELS, OUTCOMES, stack } from "../logic/chart.ts";
import { formatHour } from "../logic/format.ts";

// viewBox units; the SVG scales uniformly to the width it gets (text is never stretched).
const WIDTH = 960;
const HEIGHT = 170;
const LEFT = 40;
const BOTTOM = 22;

export function OutcomeChart({ rows, now, title }: { rows: HourlyOutcomes[]; now: Date; title: string }) {
  const buckets = hourlyBuckets(rows, now);
  const max = niceMax(buckets);
  const plotHeight = HEIGHT - BOTTOM;
  const slot = (WIDTH - LEFT) / buckets.length;
  const total = buckets.reduce((n, b) => n + b.total, 0);
  const summary = `${title}: ${total} deliveries in the last 24 hours` +
    (total ? `, ${OUTCOMES.map((o) => `${buckets.reduce((n, b) => n + b.counts[o], 0)} ${OUTCOME_LABELS[o].toLowerCase()}`).join(", ")}` : "");

  return (
    <figure className="swp-chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={summary}>
        <line x1={LEFT} y1={plotHeight} x2={WIDTH} y2={plotHeight} className="swp-axis" />
        <text x={LEFT - 6} y={12} className="swp-tick" textAnchor="end">
          {max}
        </text>
        <text x={LEFT - 6} y={plotHeight} className="swp-tick" textAnchor="end">
          0
        </text>
        {buckets.map((bucket, i) => {
          const x = LEFT + i * slot + slot * 0.15;
          const width = slot * 0.7;
          return (
            <g key={bucket.start.toISOString()}>
              <title>{describeBucket(bucket, formatHour)}</title>
              {/* an invisible full-height target, so an empty hour has a tooltip too */}
              <rect x={LEFT + i * slot} y={0} width={slot} height={plotHeight} className="swp-bar-target" />
              {stack(bucket, max).map((segment) => (
                <rect
                  key={segment.outcome}
                  x={x}
                  width={width}
                  y={plotHeight - segment.to * plotHeight}
                  height={Math.max(0.5, (segment.to - segment.from) * plotHeight)}
                  className={`swp-outcome-${segment.outcome}`}
                />
              ))}
              {i % 6 === 0 ? (
                <text x={LEFT + i * slot} y={HEIGHT - 4} className="swp-tick">
                  {formatHour(bucket.start)}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul className="swp-legend" aria-label="Legend">
          {OUTCOMES.map((o) => (
            <li key={o}>
              <svg width="10" height="10" aria-hidden="true">
                <rect width="10" height="10" className={`swp-outcome-${o}`} />
              </svg>{" "}
              {OUTCOME_LABELS[o]}
            </li>
          ))}
        </ul>
        <details>
          <summary>Show as a table</summary>
          <table className="swp-table">
            <caption className="swp-visually-hidden">{title}, per hour</caption>
            <thead>
              <tr>
                <th scope="col">Hour</th>
                {OUTCOMES.map((o) => (
                  <th scope="col" key={o}>
                    {OUTCOME_LABELS[o]}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {buckets.map((b) => (
                <tr key={b.start.toISOString()}>
                  <th scope="row">{formatHour(b.start)}</th>
                  {OUTCOMES.map((o) => (
                    <td key={o}>{b.counts[o]}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      </figcaption>
    </figure>
  );
}

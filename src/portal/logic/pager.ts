// Keyset paging of the deliveries log, older and newer: the cursors of the pages walked so
// far, newest first. The first page has no cursor; "older" pushes the page's nextCursor,
// "newer" pops back. A filter change starts again from the first page.

export interface Pager {
  /** Cursor of each page walked, the current one last (undefined: the first page). */
  readonly cursors: readonly (string | undefined)[];
}

export const FIRST_PAGE: Pager = { cursors: [undefined] };

export function currentCursor(pager: Pager): string | undefined {
  return pager.cursors[pager.cursors.length - 1];
}

/** 1 for the newest page. */
export function pageNumber(pager: Pager): number {
  return pager.cursors.length;
}

export function hasNewer(pager: Pager): boolean {
  return pager.cursors.length > 1;
}

/** The next (older) page; unchanged when there is none. */
export function older(pager: Pager, nextCursor: string | null): Pager {
  return nextCursor ? { cursors: [...pager.cursors, nextCursor] } : pager;
}

/** Back to the previous (newer) page; unchanged on the first. */
export function newer(pager: Pager): Pager {
  return hasNewer(pager) ? { cursors: pager.cursors.slice(0, -1) } : pager;
}

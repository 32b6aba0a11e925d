// The writer of one drain's results: one store call at a time, coalescing whatever
// finishes while a call is in flight.

import type { DeliveryResult, DeliveryStore } from "./store.ts";

/**
 * The store writes of one drain, one call at a time and in the order batches
 * finish: results are recorded, then unstarted rows released. Whatever
 * finishes while a call is in flight goes out together in the next one, so
 * under load the calls grow instead of queueing up. After the first failure
 * nothing more is written: those leases expire and another dispatcher
 * retries, and settled() reports the error.
 */
export class ResultWriter {
  readonly #store: DeliveryStore;
  #results: DeliveryResult[] = [];
  #released: string[] = [];
  #flushing: Promise<void> | null = null;
  #error: { cause: unknown } | null = null;

  constructor(store: DeliveryStore) {
    this.#store = store;
  }

  get failed(): boolean {
    return this.#error !== null;
  }

  write(results: DeliveryResult[], released: string[]): void {
    if (this.#error !== null || (results.length === 0 && released.length === 0)) return;
    this.#results.push(...results);
    this.#released.push(...released);
    this.#flushing ??= this.#flush().finally(() => (this.#flushing = null));
  }

  /** Resolves when everything written so far is stored; rejects with the first store error. */
  async settled(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
    if (this.#error !== null) throw this.#error.cause;
  }

  async #flush(): Promise<void> {
    while (this.#error === null && (this.#results.length > 0 || this.#released.length > 0)) {
      const results = this.#results;
      const released = this.#released;
      this.#results = [];
      this.#released = [];
      try {
        if (results.length > 0) await this.#store.record(results);
        if (released.length > 0) await this.#store.release(released);
      } catch (cause) {
        this.#error = { cause };
      }
    }
  }
}

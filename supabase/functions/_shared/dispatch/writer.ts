// The writer of the dispatch loop's results: one store call at a time, coalescing
// whatever finishes while a call is in flight.

import type { DeliveryResult, DeliveryStore } from "./store.ts";

/**
 * The store writes of one dispatch loop, one call at a time: results are recorded,
 * then unstarted rows released. Whatever finishes while a call is in flight goes out
 * together in the next one, so under load the calls grow instead of queueing up. After
 * the first failure nothing more is written: those leases expire and another dispatcher
 * retries, and settled() reports the error. `onWritten` runs after each successful call:
 * recorded results free their endpoints' slots, so the loop may claim again.
 */
export class ResultWriter {
  readonly #store: DeliveryStore;
  readonly #onWritten: () => void;
  #results: DeliveryResult[] = [];
  #released: string[] = [];
  #flushing: Promise<void> | null = null;
  #error: { cause: unknown } | null = null;

  constructor(store: DeliveryStore, onWritten: () => void = () => {}) {
    this.#store = store;
    this.#onWritten = onWritten;
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
        this.#onWritten();
      } catch (cause) {
        this.#error = { cause };
      }
    }
  }
}

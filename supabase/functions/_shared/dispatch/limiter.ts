// Concurrency limiter with a global cap and a per-key cap.
//
// The per-key cap is what keeps one slow endpoint from starving the rest: a
// receiver that takes the full timeout on every request can hold at most
// `perKey` slots, and waiting tasks for other keys are not stuck behind its
// backlog, because a freed slot goes to the oldest waiting task whose key
// still has room (FIFO among eligible tasks, not strict FIFO).

export interface LimiterOptions {
  /** Maximum tasks running at once, across all keys. */
  global: number;
  /** Maximum tasks running at once for one key. */
  perKey: number;
}

interface Waiter {
  key: string;
  start: () => void;
}

export class Limiter {
  readonly #global: number;
  readonly #perKey: number;
  #running = 0;
  readonly #runningByKey = new Map<string, number>();
  readonly #queue: Waiter[] = [];

  constructor({ global, perKey }: LimiterOptions) {
    if (!(Number.isInteger(global) && global >= 1)) {
      throw new RangeError(`global must be a positive integer, got ${global}`);
    }
    if (!(Number.isInteger(perKey) && perKey >= 1)) {
      throw new RangeError(`perKey must be a positive integer, got ${perKey}`);
    }
    this.#global = global;
    this.#perKey = perKey;
  }

  /** Tasks currently running. */
  get running(): number {
    return this.#running;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Runs `task` once a slot for `key` is free; settles with the task's result. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    if (this.#hasRoom(key)) {
      this.#acquire(key);
    } else {
      // #dispatch acquires the slot on our behalf before waking us, so nobody
      // can take it in the gap before this continuation runs.
      await new Promise<void>((start) => this.#queue.push({ key, start }));
    }
    try {
      return await task();
    } finally {
      this.#release(key);
    }
  }

  #hasRoom(key: string): boolean {
    return this.#running < this.#global && (this.#runningByKey.get(key) ?? 0) < this.#perKey;
  }

  #acquire(key: string): void {
    this.#running++;
    this.#runningByKey.set(key, (this.#runningByKey.get(key) ?? 0) + 1);
  }

  #release(key: string): void {
    this.#running--;
    const left = (this.#runningByKey.get(key) ?? 1) - 1;
    if (left === 0) this.#runningByKey.delete(key);
    else this.#runningByKey.set(key, left);
    this.#dispatch();
  }

  /** Hands free slots to the oldest waiters whose key has room. */
  #dispatch(): void {
    for (let i = 0; i < this.#queue.length && this.#running < this.#global;) {
      const { key, start } = this.#queue[i];
      if ((this.#runningByKey.get(key) ?? 0) < this.#perKey) {
        this.#queue.splice(i, 1);
        this.#acquire(key);
        start();
      } else {
        i++;
      }
    }
  }
}

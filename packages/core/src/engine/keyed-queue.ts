/**
 * Runs tasks one at a time per key, in the order they were queued (a task that fails does not stop
 * the next). A task with nothing queued before it starts at once, in the caller's tick. Keys with
 * nothing queued hold no memory.
 */
export class KeyedQueue {
  /** Per key, the last task queued (each task starts when the one before it has settled). */
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prior = this.tails.get(key);
    let run: Promise<T>;
    if (prior === undefined) {
      try {
        run = fn();
      } catch (error) {
        run = Promise.reject(error);
      }
    } else run = prior.then(fn, fn);
    this.tails.set(key, run);
    const settled = (): void => {
      if (this.tails.get(key) === run) this.tails.delete(key);
    };
    run.then(settled, settled);
    return run;
  }

  /** Keys with a task queued or running. */
  get size(): number {
    return this.tails.size;
  }
}

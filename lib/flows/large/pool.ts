/**
 * A small pool of part workers (`large_worker.ts`): jobs run on at most `size` workers at once,
 * each answered by a promise; progress bytes go to a callback.
 *
 * @module
 */

import { type PartJob, type PartReply, runJob } from "./part.ts";

/** A failed part job. */
export class PartFailure extends Error {
  constructor(readonly kind: Extract<PartReply, { op: "failed" }>["kind"], detail: string) {
    super(detail);
    this.name = "PartFailure";
  }
}

type JobInput = PartJob extends infer J ? J extends PartJob ? Omit<J, "id"> : never : never;

/** Web Workers running part jobs. */
export class PartPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly waiting: ((w: Worker) => void)[] = [];
  private nextId = 1;
  private readonly used = new Map<Worker, number>();

  /**
   * @param size workers at most; 0 runs every job on the calling thread instead (concurrent
   *   streams, no parallel CPU), for comparison
   */
  constructor(
    private readonly size: number,
    private readonly onProgress: (n: number) => void,
    private readonly recycleBytes = Number.POSITIVE_INFINITY,
  ) {}

  private spawn(): Worker {
    const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    this.all.push(w);
    this.used.set(w, 0);
    return w;
  }

  private async take(): Promise<Worker> {
    const w = this.idle.pop();
    if (w) return w;
    if (this.all.length < this.size) return this.spawn();
    return await new Promise<Worker>((r) => this.waiting.push(r));
  }

  /**
   * Return a worker after a job. A worker that failed (or has moved `recycleBytes`) is
   * terminated and replaced by a fresh one. (Recycling healthy workers to shed their garbage was
   * measured: it saved ~10 MiB of peak RSS and cost ~0.3 s of CPU per new worker, so it is off.)
   */
  private give(w: Worker, bytes: number, broken: boolean): void {
    const used = (this.used.get(w) ?? 0) + bytes;
    let next = w;
    if (broken || used >= this.recycleBytes) {
      w.terminate();
      this.all.splice(this.all.indexOf(w), 1);
      this.used.delete(w);
      next = this.spawn();
    } else this.used.set(w, used);
    const waiter = this.waiting.shift();
    if (waiter) waiter(next);
    else this.idle.push(next);
  }

  /** Run one job on a free worker. */
  async run(job: JobInput): Promise<Extract<PartReply, { op: "done" }>> {
    const id = this.nextId++;
    if (this.size === 0) {
      const r = await runJob({ ...job, id } as PartJob, this.onProgress);
      if (r.op === "failed") throw new PartFailure(r.kind, r.detail);
      return r as Extract<PartReply, { op: "done" }>;
    }
    const w = await this.take();
    let broken = false;
    let bytes = 0;
    try {
      return await new Promise((resolve, reject) => {
        w.onmessage = (m: MessageEvent<PartReply>) => {
          const r = m.data;
          if (r.id !== id) return;
          if (r.op === "progress") {
            bytes += r.bytes;
            this.onProgress(r.bytes);
          } else if (r.op === "done") resolve(r);
          else reject(new PartFailure(r.kind, r.detail));
        };
        w.onerror = (e) => {
          e.preventDefault();
          broken = true;
          reject(new PartFailure("io", e.message));
        };
        w.postMessage({ ...job, id } as PartJob);
      });
    } finally {
      this.give(w, bytes, broken);
    }
  }

  /** Stop every worker. */
  close(): void {
    for (const w of this.all) w.terminate();
    this.all.length = 0;
    this.idle.length = 0;
  }
}

/** Run `fn` over `items` with at most `limit` in flight; stops taking new items after a failure,
 * waits for the ones in flight, and rethrows the first failure. */
export async function eachLimited<T>(
  items: T[],
  limit: number,
  fn: (x: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | null = null;
  const worker = async () => {
    while (next < items.length && failed === null) {
      try {
        await fn(items[next++]);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== null) throw (failed as { e: unknown }).e;
}

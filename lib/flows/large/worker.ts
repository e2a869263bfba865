/**
 * Web Worker of the large-share pipeline: runs part jobs (`large_part.ts`) posted by
 * `PartPool`, with the parent's permissions, talking only through messages.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type PartJob, type PartReply, runJob } from "./part.ts";

self.onmessage = async (m: MessageEvent<PartJob>) => {
  const job = m.data;
  const reply = await runJob(
    job,
    (bytes) => self.postMessage({ id: job.id, op: "progress", bytes } satisfies PartReply),
  );
  self.postMessage(reply);
};

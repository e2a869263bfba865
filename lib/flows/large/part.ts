/**
 * One part job of the large-share pipeline (docs/PROTOCOL.md §5.6): either encrypt a slice of
 * the staged file into a ciphertext file (hashing it with SHA-256), or GET a part, hash and
 * decrypt it as it streams, and write the plaintext at its offset of the temporary output.
 * Runs in a Web Worker (`large_worker.ts`) or, for comparison, on the calling thread.
 *
 * @module
 */

import { AgeFileOpener, ageStreamEncrypt } from "../../crypto/age_stream.ts";
import { createHash } from "node:crypto";
import type { HomeserverHttp } from "../../homeserver/endpoint_policy.ts";
import { HomeserverError, type HttpReply } from "../../homeserver/http.ts";
import { homeserverGet } from "../../homeserver/request.ts";
import { localIoCause } from "../../util/fsutil.ts";

/** A job sent to the worker. */
export type PartJob =
  | {
    op: "encrypt";
    id: number;
    /** staged plaintext file */
    src: string;
    offset: number;
    length: number;
    /** ciphertext file to create (0600) */
    dst: string;
    recipient: string;
  }
  | {
    op: "decrypt";
    id: number;
    url: string;
    /** `pubky-host` (the sender, whose files these are) and any other request headers */
    headers: Record<string, string>;
    /**
     * The command's endpoint policy and timeouts (default: 30 s timeouts, and a policy that
     * admits loopback, since without this field `url` must be built from `endpointOf`, which
     * already checked the endpoint under the command's own policy).
     */
    http?: HomeserverHttp;
    identity: string;
    expectHash: string;
    maxCipher: number;
    /** temporary output file (exists) */
    dst: string;
    offset: number;
    plainLength: number;
  };

/** A worker's answer. */
export type PartReply =
  | { id: number; op: "progress"; bytes: number }
  | { id: number; op: "done"; hash?: string; cipherLength?: number }
  | {
    id: number;
    op: "failed";
    kind: "hash" | "missing" | "network" | "length" | "decrypt" | "io";
    detail: string;
  };

const CHUNK = 1 << 20;
const PROGRESS_EVERY = 4 << 20;

/** A job failure of a known kind. */
export class Fail extends Error {
  constructor(
    readonly kind: "hash" | "missing" | "network" | "length" | "decrypt" | "io",
    m: string,
  ) {
    super(m);
  }
}

/**
 * Synchronous file I/O on the hot path: a 1 MiB page-cache read or write takes well under a
 * millisecond, and Deno's async `read`/`write` of the same cost several times the CPU
 * (measured: 1 MiB writes, 256 MiB, 3.1 → 1.8 CPU s with the HTTP body reads around them).
 */
function writeAll(f: Deno.FsFile, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += f.writeSync(b.subarray(off));
}

/** Fill `buf` from `f`; a short read means the source shrank. */
async function readFull(f: Deno.FsFile, buf: Uint8Array): Promise<void> {
  let n = 0;
  while (n < buf.length) {
    const r = await f.read(buf.subarray(n));
    if (r === null) throw new Fail("io", "source file shrank");
    n += r;
  }
}

/**
 * Encrypt one part: 1 MiB reads (awaited, so other parts' uploads go on between them), each
 * sealed, hashed and written in a plain synchronous loop, with no stream machinery (measured on
 * the sealer alone: 2.7–3.1 CPU s per GiB through a TransformStream, 2.0–2.7 called directly;
 * for the whole part job the difference stayed within run-to-run noise).
 */
export async function encryptPart(
  job: Extract<PartJob, { op: "encrypt" }>,
  progress: (n: number) => void,
) {
  const src = await Deno.open(job.src, { read: true });
  const dst = await Deno.open(job.dst, { write: true, createNew: true, mode: 0o600 });
  try {
    await src.seek(job.offset, Deno.SeekMode.Start);
    const age = await ageStreamEncrypt(job.recipient);
    const h = createHash("sha256");
    const put = (c: Uint8Array) => {
      if (c.length === 0) return;
      h.update(c);
      writeAll(dst, c);
    };
    put(age.head);
    let n = age.head.length;
    let reported = 0;
    const buf = new Uint8Array(CHUNK);
    for (let left = job.length; left > 0;) {
      const piece = buf.subarray(0, Math.min(CHUNK, left));
      await readFull(src, piece);
      left -= piece.length;
      const sealed = age.sealer.push(piece);
      put(sealed);
      n += sealed.length;
      if (n - reported >= PROGRESS_EVERY) {
        progress(n - reported);
        reported = n;
      }
    }
    const last = age.sealer.finish();
    put(last);
    n += last.length;
    // no fsync: the file is a temporary copy for one upload; a crash discards it
    progress(n - reported);
    return { hash: h.digest("hex"), cipherLength: n };
  } finally {
    src.close();
    dst.close();
  }
}

/** Checked here for a job without `http`: discovery applied the command's policy to its URL. */
const CHECKED_BY_DISCOVERY: HomeserverHttp = { allowLoopback: true };

/**
 * GET a part through the one homeserver GET (endpoint policy, no redirect, timeouts, 429 waited
 * out as the server asks up to 3 times, at most a minute each). 200 or 404 come back; anything
 * else, a redirect, a timeout or a refused endpoint is a network failure that says so (the part
 * stays missing; re-running the receive resumes).
 */
export async function getPart(
  job: Pick<Extract<PartJob, { op: "decrypt" }>, "url" | "headers" | "http">,
): Promise<HttpReply> {
  const { "pubky-host": tenant = "", ...headers } = job.headers;
  try {
    return await homeserverGet(job.url, {
      tenant,
      headers,
      pass: [404],
      http: job.http ?? CHECKED_BY_DISCOVERY,
    });
  } catch (e) {
    if (e instanceof HomeserverError && e.kind === "rate_limited") {
      const wait = e.retryAfterMs ?? 0;
      throw new Fail(
        "network",
        `the homeserver is rate limiting (429${
          wait > 60_000 ? `, asks to wait ${Math.ceil(wait / 1000)} s` : ""
        }); try again later`,
      );
    }
    throw new Fail("network", `GET failed: ${(e as Error).message}`);
  }
}

/** Fetch, hash and decrypt one part. */
export async function decryptPart(
  job: Extract<PartJob, { op: "decrypt" }>,
  progress: (n: number) => void,
) {
  const res = await getPart(job);
  if (res.status === 404) {
    await res.body?.cancel();
    throw new Fail("missing", "404");
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    throw new Fail("network", `GET status ${res.status}`);
  }
  const h = createHash("sha256");
  let cipherBytes = 0;
  let reported = 0;
  let plain = 0;
  const dst = await Deno.open(job.dst, { write: true });
  try {
    await dst.seek(job.offset, Deno.SeekMode.Start);
    // each piece of the body is hashed and opened as it comes, in a plain loop; plaintext is
    // written as it authenticates
    const opener = new AgeFileOpener(job.identity, (c) => {
      plain += c.length;
      if (plain > job.plainLength) throw new Fail("length", "part decrypts to too many bytes");
      try {
        writeAll(dst, c);
      } catch (e) {
        // this machine's condition (a full disk …), not the part's: the verified parts stay
        throw new Fail("io", localIoCause(e) ?? `write failed: ${(e as Error).message}`);
      }
    });
    const reader = res.body.getReader();
    try {
      for (;;) {
        let r;
        try {
          r = await reader.read();
        } catch (e) {
          // a connection that breaks mid-body is a network failure (resumable), not a bad part
          throw new Fail("network", `GET broke off: ${(e as Error).message}`);
        }
        if (r.done) break;
        const c = r.value;
        cipherBytes += c.length;
        if (cipherBytes > job.maxCipher) throw new Fail("length", "part longer than its bound");
        h.update(c);
        if (cipherBytes - reported >= PROGRESS_EVERY) {
          progress(cipherBytes - reported);
          reported = cipherBytes;
        }
        await opener.push(c);
      }
      opener.finish();
    } catch (e) {
      await reader.cancel().catch(() => {});
      if (e instanceof Fail) throw e;
      // a tampered or truncated part
      throw new Fail("decrypt", (e as Error).message);
    }
    if (h.digest("hex") !== job.expectHash) throw new Fail("hash", "part hash mismatch");
    if (plain !== job.plainLength) throw new Fail("length", "part length mismatch");
    await dst.sync();
    progress(cipherBytes - reported);
    return {};
  } finally {
    dst.close();
  }
}

/** Run one job, reporting progress; returns the reply to post. */
export async function runJob(job: PartJob, progress: (bytes: number) => void): Promise<PartReply> {
  try {
    const r = job.op === "encrypt"
      ? await encryptPart(job, progress)
      : await decryptPart(job, progress);
    return { id: job.id, op: "done", ...r };
  } catch (e) {
    const kind = e instanceof Fail ? e.kind : "io";
    const detail = e instanceof Fail ? e.message : localIoCause(e) ?? (e as Error).message;
    return { id: job.id, op: "failed", kind, detail };
  }
}

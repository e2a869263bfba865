// Issue 17 hardening of the large-share path: a homeserver refusing a streamed PUT before
// reading it (exit 1, not "unreachable"), concurrent sends of one source, I/O errors during a
// receive (no space, a too-long name), v2 publishes stored on enough nodes, the testnet's bounded
// stores, and the cleanup of abandoned receives.
import assert from "node:assert/strict";
import { HomeserverClient } from "../lib/homeserver/client.ts";
import { EXIT_OF } from "../lib/cli/exit_codes.ts";
import { CipherpostError } from "../lib/util/errors.ts";

const MiB = 1 << 20;

/**
 * A raw TCP "homeserver" that answers every request with `status` as soon as the headers are
 * in, then closes without reading the body (the peer's unread bytes make the kernel reset).
 */
function refusingServer(status: string): { port: number; close: () => void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of l) {
      conns.add(c);
      (async () => {
        try {
          const buf = new Uint8Array(8192);
          await c.read(buf);
          await c.write(
            new TextEncoder().encode(
              `HTTP/1.1 ${status}\r\ncontent-length: 4\r\nconnection: close\r\n\r\nfull`,
            ),
          );
        } catch { /* the client went away */ }
        try {
          c.close();
        } catch { /* closed */ }
        conns.delete(c);
      })();
    }
  })().catch(() => {});
  return {
    port: (l.addr as Deno.NetAddr).port,
    close: () => {
      l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

function bigBody(size: number): () => ReadableStream<Uint8Array> {
  return () => {
    let sent = 0;
    const chunk = new Uint8Array(64 << 10);
    return new ReadableStream({
      pull(c) {
        if (sent >= size) return c.close();
        c.enqueue(chunk.slice());
        sent += chunk.length;
      },
    });
  };
}

const USER = "o4dksfbqk85ogzdb5osziw6befigbuxmuxkuxq8434q89uj56uyy";

Deno.test("homeserver PUT: a 507 sent before the body is read is a refusal (exit 1), not unreachable (exit 6)", async () => {
  const srv = refusingServer("507 Insufficient Storage");
  try {
    const client = new HomeserverClient({
      baseUrl: `http://127.0.0.1:${srv.port}`,
      user: USER,
      auth: {
        cookie: () => ({ user: USER, secret: "x", capabilities: "/pub/cipherpost/:rw" }),
        reauthenticate: () => Promise.resolve(false),
      },
    });
    let err: unknown = null;
    try {
      await client.put("/pub/cipherpost/blobs/x/part-00000", bigBody(32 * MiB), {
        contentLength: 32 * MiB,
      });
    } catch (e) {
      err = e;
    }
    assert(err instanceof CipherpostError, String(err));
    assert.notEqual(err.kind, "homeserver", err.message);
    assert.deepStrictEqual(EXIT_OF[err.kind], 1, `${err.kind}: ${err.message}`);
    assert.match(err.message, /quota|507/);
  } finally {
    srv.close();
  }
  // A homeserver that is not there at all stays unreachable (exit 6).
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (gone.addr as Deno.NetAddr).port;
  gone.close();
  const client = new HomeserverClient({
    baseUrl: `http://127.0.0.1:${port}`,
    user: USER,
    auth: {
      cookie: () => ({ user: USER, secret: "x", capabilities: "/pub/cipherpost/:rw" }),
      reauthenticate: () => Promise.resolve(false),
    },
  });
  const e2 = await client.put("/pub/cipherpost/blobs/x/part-00000", bigBody(MiB)).then(
    () => null,
    (e) => e,
  );
  assert(e2 instanceof CipherpostError);
  assert.deepStrictEqual(EXIT_OF[e2.kind], 6, e2.message);
});

/**
 * Serve a Fetch-API handler (`Request` in, `Response` out) on `node:http`, for the stand-in
 * homeserver. `Deno.serve` would do the same with less code, but reading a large request body
 * through it cost ~3× the CPU here (256 MiB of PUTs from another process: 1.12 CPU s with
 * `Deno.serve`, 0.41 with `node:http` and this adapter), and the stand-in's PUT path was what
 * bounded the large-share benchmark. Request and response bodies stream with backpressure.
 *
 * @module
 */

import http from "node:http";

/** A running server. */
export interface NodeHttpServer {
  readonly port: number;
  /** stop listening and close every connection */
  shutdown(): Promise<void>;
}

/** Listen on `hostname:port` (0 = any free port) and answer every request with `handler`. */
export async function serveNodeHttp(
  hostname: string,
  port: number,
  handler: (req: Request) => Promise<Response>,
): Promise<NodeHttpServer> {
  const server = http.createServer((req, res) => void answer(req, res));

  async function answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // a peer that goes away mid-request must not take the server down
    req.on("error", () => {});
    res.on("error", () => {});
    const method = req.method ?? "GET";
    const headers = new Headers();
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      try {
        headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
      } catch { /* a header value fetch refuses: dropped */ }
    }
    let request: Request;
    try {
      const hasBody = method !== "GET" && method !== "HEAD";
      request = new Request(`http://${req.headers.host ?? hostname}${req.url ?? "/"}`, {
        method,
        headers,
        body: hasBody ? bodyOf(req) : null,
        duplex: "half",
      } as RequestInit);
    } catch {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end("Bad Request");
      return;
    }
    let response: Response;
    try {
      response = await handler(request);
    } catch {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("Internal Server Error");
      return;
    }
    const out: Record<string, string | string[]> = {};
    response.headers.forEach((v, k) => {
      if (k !== "set-cookie") out[k] = v;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) out["set-cookie"] = cookies;
    res.writeHead(response.status, out);
    if (response.body === null || method === "HEAD") {
      await response.body?.cancel().catch(() => {});
      res.end();
      return;
    }
    const reader = response.body.getReader();
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        if (res.destroyed) throw new Error("client gone");
        if (!res.write(value)) {
          await new Promise<void>((resolve) => {
            const go = () => {
              res.off("drain", go);
              res.off("close", go);
              resolve();
            };
            res.on("drain", go);
            res.on("close", go);
          });
        }
      }
      res.end();
    } catch {
      await reader.cancel().catch(() => {});
      res.destroy();
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("no TCP address");
  return {
    port: addr.port,
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A request body as a web stream, with backpressure (the socket is paused while 4 chunks wait).
 * `Readable.toWeb` does the same through Node's generic adapter, which cost ~0.3 CPU s more per
 * GiB of PUTs here.
 */
function bodyOf(req: http.IncomingMessage): ReadableStream<Uint8Array> {
  let finished = false;
  return new ReadableStream<Uint8Array>({
    start(c) {
      req.on("data", (chunk: Uint8Array) => {
        if (finished) return;
        c.enqueue(chunk);
        if ((c.desiredSize ?? 0) <= 0) req.pause();
      });
      req.on("end", () => {
        if (finished) return;
        finished = true;
        c.close();
      });
      const fail = () => {
        if (finished) return;
        finished = true;
        c.error(new Error("request body broke off"));
      };
      req.on("error", fail);
      req.on("close", () => {
        if (!req.complete) fail();
      });
    },
    pull() {
      req.resume();
    },
    cancel() {
      finished = true;
      req.destroy();
    },
  }, { highWaterMark: 4 });
}

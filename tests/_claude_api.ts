// A loopback stand-in for the Anthropic Messages API, for tests that run the real Claude Code CLI.
// `POST /v1/messages` answers with the streaming SSE events the CLI expects (message_start,
// content_block_start, content_block_delta, content_block_stop, message_delta, message_stop) and
// records every request body it received. Anything else gets a 404 and is recorded too, so a test
// can see what the CLI tried to reach. Nothing here leaves 127.0.0.1.

/** One request the stand-in received. */
export interface ApiRequest {
  method: string;
  path: string;
  body: unknown;
}

/** A running stand-in. */
export interface ClaudeApi {
  url: string;
  port: number;
  requests: ApiRequest[];
  /** The `messages` arrays of every POST /v1/messages, as JSON text (for "did it see X?"). */
  messagesText(): string;
  close(): Promise<void>;
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The reply text for a request: echoes a short marker so transcripts differ per turn. */
function replyFor(n: number): string {
  return `stand-in reply ${n}`;
}

/** A scripted tool call: the stand-in answers a turn with this `tool_use` block. */
export interface ScriptedToolUse {
  name: string;
  input: Record<string, unknown>;
}

/**
 * Start the stand-in on a free loopback port (`delayMs`: wait before answering a turn;
 * `script`: a tool call to answer a request with, or null for the usual text reply).
 */
export function startClaudeApi(
  opts: { delayMs?: number; script?: (body: unknown) => ScriptedToolUse | null } = {},
): ClaudeApi {
  const requests: ApiRequest[] = [];
  let n = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      let body: unknown = null;
      const text = await req.text();
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      requests.push({ method: req.method, path: url.pathname, body });
      if (req.method === "POST" && url.pathname === "/v1/messages/count_tokens") {
        return Response.json({ input_tokens: 10 });
      }
      if (req.method !== "POST" || url.pathname !== "/v1/messages") {
        return new Response("not here", { status: 404 });
      }
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      const b = (body ?? {}) as { model?: string; stream?: boolean };
      const model = b.model ?? "claude-standin";
      const id = `msg_standin_${++n}`;
      const reply = replyFor(n);
      const usage = { input_tokens: 10, output_tokens: 5 };
      const tool = opts.script?.(body) ?? null;
      if (tool && b.stream !== false) {
        const block = { type: "tool_use", id: `toolu_standin_${n}`, name: tool.name, input: {} };
        return new Response(
          [
            sse("message_start", {
              type: "message_start",
              message: {
                id,
                type: "message",
                role: "assistant",
                model,
                content: [],
                stop_reason: null,
                stop_sequence: null,
                usage: { input_tokens: 10, output_tokens: 1 },
              },
            }),
            sse("content_block_start", {
              type: "content_block_start",
              index: 0,
              content_block: block,
            }),
            sse("content_block_delta", {
              type: "content_block_delta",
              index: 0,
              delta: { type: "input_json_delta", partial_json: JSON.stringify(tool.input) },
            }),
            sse("content_block_stop", { type: "content_block_stop", index: 0 }),
            sse("message_delta", {
              type: "message_delta",
              delta: { stop_reason: "tool_use", stop_sequence: null },
              usage: { output_tokens: 5 },
            }),
            sse("message_stop", { type: "message_stop" }),
          ].join(""),
          { headers: { "content-type": "text/event-stream", "request-id": `req_${n}` } },
        );
      }
      if (b.stream === false) {
        return Response.json({
          id,
          type: "message",
          role: "assistant",
          model,
          content: [{ type: "text", text: reply }],
          stop_reason: "end_turn",
          stop_sequence: null,
          usage,
        });
      }
      const events = [
        sse("message_start", {
          type: "message_start",
          message: {
            id,
            type: "message",
            role: "assistant",
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 10, output_tokens: 1 },
          },
        }),
        sse("content_block_start", {
          type: "content_block_start",
          index: 0,
          content_block: { type: "text", text: "" },
        }),
        sse("content_block_delta", {
          type: "content_block_delta",
          index: 0,
          delta: { type: "text_delta", text: reply },
        }),
        sse("content_block_stop", { type: "content_block_stop", index: 0 }),
        sse("message_delta", {
          type: "message_delta",
          delta: { stop_reason: "end_turn", stop_sequence: null },
          usage: { output_tokens: 5 },
        }),
        sse("message_stop", { type: "message_stop" }),
      ];
      return new Response(events.join(""), {
        headers: { "content-type": "text/event-stream", "request-id": `req_${n}` },
      });
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    messagesText() {
      return requests
        .filter((r) => r.path === "/v1/messages")
        .map((r) => JSON.stringify((r.body as { messages?: unknown })?.messages ?? null))
        .join("\n");
    },
    close: () => server.shutdown(),
  };
}

// Test helper: a real HTTP receiver on 127.0.0.1 with an OS-assigned port.
// Tests exercise the real fetch stack end to end; nothing mocks the network.

export interface ReceivedRequest {
  method: string;
  /** Path and query as the server saw them. */
  path: string;
  headers: Headers;
  body: string;
}

export type ReceiverHandler = (request: ReceivedRequest) => Response | Promise<Response>;

export interface Receiver extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` (or https with TLS). */
  origin: string;
  port: number;
  /** `127.0.0.1:<port>`, ready for WEBHOOK_ALLOWED_TARGETS. */
  target: string;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

export interface ReceiverOptions {
  tls?: { cert: string; key: string };
}

export function startReceiver(
  handler: ReceiverHandler = () => new Response("ok"),
  options: ReceiverOptions = {},
): Receiver {
  const requests: ReceivedRequest[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, ...(options.tls ?? {}) },
    async (req) => {
      const url = new URL(req.url);
      const received = {
        method: req.method,
        path: url.pathname + url.search,
        headers: req.headers,
        body: await req.text(),
      };
      requests.push(received);
      return handler(received);
    },
  );
  const port = server.addr.port;
  const close = async () => {
    await server.shutdown();
  };
  return {
    origin: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    target: `127.0.0.1:${port}`,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A port with nothing listening on it (bound, then closed). */
export function unusedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A promise plus its resolver, for receivers that must wait on the test. */
export function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** `whsec_` + 24 random bytes, the shape the SQL side generates. */
export function newSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

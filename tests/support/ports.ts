// Ports for a stack a test starts on its own: nobody listens on them right now, none is
// another's, and each one's + 100 is free of the others too (PostgREST's admin port is
// REST_PORT + 100). A port is closed again once picked and the system may hand it out twice:
// a CI run got DB_PORT = REST_PORT, and the stack refused to start.
import net from "node:net";

function onePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** One free port per name, all distinct, as strings for the environment. */
export async function freePorts<const K extends string>(names: readonly K[]): Promise<Record<K, string>> {
  const taken = new Set<number>();
  const ports = {} as Record<K, string>;
  for (const name of names) {
    for (;;) {
      const port = await onePort();
      if (port + 100 >= 65536 || [port, port + 100, port - 100].some((p) => taken.has(p))) continue;
      taken.add(port);
      ports[name] = String(port);
      break;
    }
  }
  return ports;
}

import { createServer } from "node:net";

/** The block private addresses come from; Linux routes all of 127.0.0.0/8 to the loopback device. */
const PREFIX = "127.77";

/** The lowest address of 127.77.0.0/16 not in `used` (skipping .0 and .255 host parts); null when all are taken. */
export function nextPrivateIp(used: ReadonlySet<string>): string | null {
  for (let hi = 0; hi < 256; hi++) {
    for (let lo = 1; lo < 255; lo++) {
      const ip = `${PREFIX}.${hi}.${lo}`;
      if (!used.has(ip)) return ip;
    }
  }
  return null;
}

/** Binds `host:port` (0: any free port), closes it again, and returns the port; rejects when it is taken. */
export function probePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error(`no port bound on ${host}`));
      });
    });
  });
}

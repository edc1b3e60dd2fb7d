// A machine's server for the network tests and bench: HTTP on [::]:8080 answering "<app> <machine id>"
// (or streaming /bytes/<n>),
// and a TCP echo on [::]:8081. "::" takes IPv4 too, so the same server answers on 6PN and on privateIp.
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";

const identity = `${process.env.FLY_APP_NAME} ${process.env.FLY_MACHINE_ID}\n`;
const chunk = Buffer.alloc(1 << 20);

/** GET /bytes/<n> streams n zero bytes (throughput); anything else answers the identity. */
createHttpServer((req, res) => {
  const bytes = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
  if (!bytes) return res.end(identity);
  let left = Number(bytes[1]);
  const pump = () => {
    while (left > 0) {
      const part = chunk.subarray(0, Math.min(left, chunk.length));
      left -= part.length;
      if (!res.write(part)) return res.once("drain", pump);
    }
    res.end();
  };
  pump();
}).listen(8080, "::");
createTcpServer((socket) => {
  socket.on("error", () => socket.destroy());
  socket.pipe(socket);
}).listen(8081, "::");

// A machine's server for the network tests and bench: HTTP on [::]:8080 answering "<app> <machine id>",
// and a TCP echo on [::]:8081. "::" takes IPv4 too, so the same server answers on 6PN and on privateIp.
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";

const identity = `${process.env.FLY_APP_NAME} ${process.env.FLY_MACHINE_ID}\n`;
createHttpServer((_, res) => res.end(identity)).listen(8080, "::");
createTcpServer((socket) => {
  socket.on("error", () => socket.destroy());
  socket.pipe(socket);
}).listen(8081, "::");

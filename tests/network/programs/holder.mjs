// A machine's main process that holds one TCP connection to an echo server ([host]:port from argv)
// and sends a line every 100 ms; /tmp/holder.json says how many echoes came back on that one
// connection and whether it broke. It never reconnects: a break stays visible.
import { renameSync, writeFileSync } from "node:fs";
import { connect } from "node:net";

const [host, port] = process.argv.slice(2);
const state = { connected: false, sent: 0, echoes: 0, closed: false, error: "" };
// Written whole then renamed: a reader (the test, through exec) never sees a half-written file.
const save = () => {
  writeFileSync("/tmp/holder.json.new", JSON.stringify(state));
  renameSync("/tmp/holder.json.new", "/tmp/holder.json");
};
save();
const socket = connect({ host, port: Number(port) });
let buffered = "";
socket.on("connect", () => {
  state.connected = true;
  save();
  setInterval(() => {
    if (state.closed) return;
    socket.write(`${++state.sent}\n`);
    save();
  }, 100);
});
socket.on("data", (chunk) => {
  buffered += chunk;
  const lines = buffered.split("\n");
  buffered = lines.pop() ?? "";
  state.echoes += lines.length;
  save();
});
socket.on("error", (error) => {
  state.error = error.message;
  save();
});
socket.on("close", () => {
  state.closed = true;
  save();
});
setInterval(() => {}, 1 << 30);

// A server "on the internet" for edge apps' fetches: its own network namespace joined to the test's
// by a veth pair, with addresses from TEST-NET-3 (203.0.113.0/24, documentation space: public as far
// as the platform's address policy goes, routed nowhere real). Nothing in the test's namespace changes
// but its end of the veth and that end's /30 (no forwarding, no firewall); close() deletes the
// namespace, which takes the veth pair with it.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);
const IP = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].find((path) => existsSync(path)) ?? "ip";
const ip = (...args: string[]) => run(IP, args);

export interface InternetServer {
  /** The server's address (the namespace's end of the /30). */
  ip: string;
  port: number;
  /** `http://<ip>:<port>` */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts an HTTP server in a namespace of its own on a 203.0.113.x/30, answering every request with
 * JSON naming itself and echoing what it got (method, path, Host, X-Forwarded-Host, X-Served-By). Root
 * only.
 */
export async function startInternetServer(port = 80): Promise<InternetServer> {
  const id = randomBytes(3).toString("hex");
  const netns = `hangar-inet-${id}`;
  const rootEnd = `hinet${id}`;
  // One of the 64 /30s of TEST-NET-3; another run's slot makes `addr add` fail, so a few are tried.
  let slot = 0;
  let child: ChildProcess | undefined;
  const close = async () => {
    child?.kill("SIGKILL");
    await ip("netns", "del", netns).catch(() => undefined);
    await ip("link", "del", rootEnd).catch(() => undefined);
  };
  try {
    await ip("netns", "add", netns);
    await ip("link", "add", rootEnd, "type", "veth", "peer", "name", "eth0", "netns", netns);
    for (let attempt = 0; ; attempt++) {
      slot = Number.parseInt(randomBytes(1).toString("hex"), 16) % 64;
      const taken = await run(IP, ["-4", "route", "show", `203.0.113.${slot * 4}/30`]).then((r) =>
        r.stdout.trim(),
      );
      if (taken === "") break;
      if (attempt > 20) throw new Error("no free /30 in 203.0.113.0/24 for the internet server");
    }
    await ip("addr", "add", `203.0.113.${slot * 4 + 1}/30`, "dev", rootEnd);
    await ip("link", "set", rootEnd, "up");
    await ip("-n", netns, "addr", "add", `203.0.113.${slot * 4 + 2}/30`, "dev", "eth0");
    await ip("-n", netns, "link", "set", "eth0", "up");
    await ip("-n", netns, "link", "set", "lo", "up");
    const address = `203.0.113.${slot * 4 + 2}`;
    const program = `require("node:http").createServer((req, res) => {
        req.resume();
        req.on("end", () => {
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ origin: "internet", method: req.method, path: req.url,
            host: req.headers.host, forwarded_host: req.headers["x-forwarded-host"] ?? null,
            served_by: req.headers["x-served-by"] ?? null }));
        });
      }).listen(${port}, "${address}", () => console.log("ready"));`;
    child = spawn(IP, ["netns", "exec", netns, process.execPath, "-e", program], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const started = child;
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(
        () => reject(new Error(`the internet server did not listen: ${output}`)),
        10_000,
      );
      started.stderr?.on("data", (d: Buffer) => {
        output += d.toString();
      });
      started.stdout?.on("data", (d: Buffer) => {
        output += d.toString();
        if (output.includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      started.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the internet server exited (${code}): ${output}`));
      });
    });
    started.stdout?.resume();
    started.stderr?.resume();
    return { ip: address, port, url: `http://${address}${port === 80 ? "" : `:${port}`}`, close };
  } catch (err) {
    await close();
    throw err;
  }
}

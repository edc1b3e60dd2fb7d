// Long-lived load through the proxy: N clients, each with one keep-alive connection, each sending
// `GET /?hold=<ms>` to examples/hello again as soon as the last answer came. So N requests are always in
// flight, which is what the proxy counts and the autoscaler scales on. Every answer is recorded.
import { Agent, request } from "node:http";

export interface HeldAnswer {
  status: number;
  /** From the hello app's body (empty on a proxy refusal or error). */
  machineId: string;
  inFlight: number;
  /** ms since the load started. */
  atMs: number;
  error?: string;
}

export interface HeldLoadOptions {
  proxyPort: number;
  app: string;
  clients: number;
  holdMs: number;
}

/** N clients holding requests open until stop(). */
export class HeldLoad {
  readonly answers: HeldAnswer[] = [];
  private stopped = false;
  private readonly started = performance.now();
  private readonly done: Promise<unknown>;
  private readonly agents: Agent[] = [];

  constructor(private readonly opts: HeldLoadOptions) {
    this.done = Promise.all(Array.from({ length: opts.clients }, () => this.client()));
  }

  /** Machines that answered since `sinceMs` (ms since the load started). */
  machinesSince(sinceMs: number): Set<string> {
    const out = new Set<string>();
    for (const a of this.answers) if (a.atMs >= sinceMs && a.machineId) out.add(a.machineId);
    return out;
  }

  /** Answers that were not a 200 from a machine. */
  failures(): HeldAnswer[] {
    return this.answers.filter((a) => a.status !== 200);
  }

  /** Stops sending, and waits for the requests in flight to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    for (const a of this.agents) a.destroy();
  }

  elapsedMs(): number {
    return performance.now() - this.started;
  }

  private async client(): Promise<void> {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    this.agents.push(agent);
    while (!this.stopped) {
      const answer = await this.once(agent);
      this.answers.push(answer);
      // A refused or cut connection (the proxy restarting) is not a reason to spin.
      if (answer.error) await new Promise((r) => setTimeout(r, 100));
    }
  }

  private once(agent: Agent): Promise<HeldAnswer> {
    const { proxyPort, app, holdMs } = this.opts;
    return new Promise((resolve) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: proxyPort,
          path: `/?hold=${holdMs}`,
          agent,
          headers: { host: `${app}.localhost:${proxyPort}` },
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            body += d;
          });
          res.on("end", () => {
            let parsed: { machine_id?: string; in_flight?: number } = {};
            try {
              parsed = JSON.parse(body) as typeof parsed;
            } catch {
              // A refusal's body has no machine.
            }
            resolve({
              status: res.statusCode ?? 0,
              machineId: res.statusCode === 200 ? (parsed.machine_id ?? "") : "",
              inFlight: parsed.in_flight ?? 0,
              atMs: this.elapsedMs(),
              // A refusal says why (the proxy's {"error": ...}), for the failure's message.
              ...(res.statusCode === 200 ? {} : { error: body.slice(0, 200) }),
            });
          });
          res.on("error", (err) => resolve(this.failed(err)));
        },
      );
      req.on("error", (err) => resolve(this.failed(err)));
      req.end();
    });
  }

  private failed(err: Error): HeldAnswer {
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    return { status: 0, machineId: "", inFlight: 0, atMs: this.elapsedMs(), error: code };
  }
}

// Probes what a NATS user may really do, by delivery rather than by error messages: a publish is
// allowed when an operator's subscription receives it; a subscription is allowed when it receives
// what an operator publishes. nats-server handles one connection's protocol in order, so a PUB
// before a PING is routed before the PONG: after both connections flush, the answer is known, with
// no sleeping. Permission errors (PermissionViolationError on the status stream) are collected too.
import { type NatsCredentials, natsAuthOptions, OPERATOR_USER } from "@hangar/service";
import { connect, type NatsConnection, PermissionViolationError } from "@nats-io/transport-node";

/** Connects as `user` with its seed from the credentials folder (its own inbox prefix too). */
export function connectAs(url: string, creds: NatsCredentials, user: string): Promise<NatsConnection> {
  return connect({
    servers: url,
    name: `probe-${user}`,
    ...natsAuthOptions({ credsFile: creds.credsFile(user), user }),
  });
}

/** A concrete subject for a permission pattern: each `*` and `>` becomes a token of its own. */
export function instanceOf(pattern: string): string {
  return pattern
    .split(".")
    .map((t) => (t === "*" ? "probe" : t === ">" ? "probe.deep" : t))
    .join(".");
}

/** Whether a subject matches a NATS subject pattern (`*` one token, `>` one or more). */
export function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** A connection's permission violations, as nats.js reports them (by type, not text). */
export function collectViolations(nc: NatsConnection): PermissionViolationError[] {
  const seen: PermissionViolationError[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && s.error instanceof PermissionViolationError) seen.push(s.error);
    }
  })();
  return seen;
}

/** Prober for one user: `canPublish` and `canSubscribe` answer from what the server delivers. */
export class Prober {
  private serial = 0;

  private constructor(
    private readonly user: NatsConnection,
    private readonly operator: NatsConnection,
  ) {}

  /** A prober of `user` on the server at `url`, with an operator connection to watch and feed it. */
  static async open(url: string, creds: NatsCredentials, user: string): Promise<Prober> {
    return new Prober(await connectAs(url, creds, user), await connectAs(url, creds, OPERATOR_USER));
  }

  /** The user's connection. */
  get nc(): NatsConnection {
    return this.user;
  }

  /** Publishes on `subject` as the user; true when the server let it through. */
  async canPublish(subject: string): Promise<boolean> {
    const marker = `probe-${this.serial++}`;
    let got = false;
    const sub = this.operator.subscribe(subject, {
      callback: (_err, m) => {
        if (m.string() === marker) got = true;
      },
    });
    await this.operator.flush();
    this.user.publish(subject, marker);
    await this.user.flush();
    await this.operator.flush();
    sub.unsubscribe();
    return got;
  }

  /** Subscribes to `subject` as the user; true when a message published there reached it. */
  async canSubscribe(subject: string): Promise<boolean> {
    const marker = `probe-${this.serial++}`;
    let got = false;
    const sub = this.user.subscribe(subject, {
      callback: (err, m) => {
        if (!err && m.string() === marker) got = true;
      },
    });
    await this.user.flush();
    this.operator.publish(subject, marker);
    await this.operator.flush();
    await this.user.flush();
    sub.unsubscribe();
    return got;
  }

  async close(): Promise<void> {
    await Promise.all([this.user.close(), this.operator.close()]);
  }
}

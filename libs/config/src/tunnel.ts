import { connect, Socket, type TcpNetConnectOpts } from "node:net";
import { isReadable } from "node:stream";
import { TLSSocket } from "node:tls";

// The wire format of tunnels into machines (`hangar proxy`, `hangar ssh console`), shared by the CLI,
// the gateway and the host agent. A port tunnel carries raw bytes both ways. An exec tunnel carries
// the client's stdin raw (its end: the client's half-close) and the command's output in frames, so
// that stdout, stderr and the exit status stay apart on one connection.

/** The `Upgrade` header's protocol: `Connection: Upgrade`, `Upgrade: hangar-tunnel`, answered by 101. */
export const TUNNEL_PROTOCOL = "hangar-tunnel";

/** What a frame from the host carries. */
export const ExecFrameKind = { stdout: 1, stderr: 2, end: 3 } as const;
export type ExecFrameKind = (typeof ExecFrameKind)[keyof typeof ExecFrameKind];

/** The last frame of an exec: how the command ended, or why it could not run. */
export type ExecEnd = { exit_code: number; exit_signal: number } | { error: string };

/** A frame's header: its kind (1 byte) and its payload's length (4 bytes, big-endian). */
const HEADER_BYTES = 5;
/** The largest payload a frame may carry: more is a broken or hostile stream. */
export const MAX_FRAME_BYTES = 1 << 24;

/** One frame of an exec's output. */
export function encodeExecFrame(kind: ExecFrameKind, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(kind, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** The end frame of an exec. */
export function encodeExecEnd(end: ExecEnd): Buffer {
  return encodeExecFrame(ExecFrameKind.end, Buffer.from(JSON.stringify(end)));
}

/** Splits an exec's output stream back into frames, however its chunks fall. */
export class ExecFrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  /** The whole frames completed by `chunk`; throws on an unknown kind or an oversized frame. */
  push(chunk: Buffer): Array<{ kind: ExecFrameKind; payload: Buffer }> {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Array<{ kind: ExecFrameKind; payload: Buffer }> = [];
    while (this.pending.length >= HEADER_BYTES) {
      const kind = this.pending.readUInt8(0);
      const length = this.pending.readUInt32BE(1);
      if (!Object.values(ExecFrameKind).includes(kind as ExecFrameKind))
        throw new Error(`exec stream: unknown frame kind ${kind}`);
      if (length > MAX_FRAME_BYTES) throw new Error(`exec stream: frame of ${length} bytes`);
      if (this.pending.length < HEADER_BYTES + length) break;
      frames.push({
        kind: kind as ExecFrameKind,
        payload: this.pending.subarray(HEADER_BYTES, HEADER_BYTES + length),
      });
      this.pending = this.pending.subarray(HEADER_BYTES + length);
    }
    return frames;
  }

  /** Whether a frame was cut off: bytes left over when the stream ended. */
  get partial(): boolean {
    return this.pending.length > 0;
  }
}

/** Reads an end frame's payload. */
export function parseExecEnd(payload: Buffer): ExecEnd {
  const end = JSON.parse(payload.toString()) as Partial<{
    exit_code: unknown;
    exit_signal: unknown;
    error: unknown;
  }>;
  if (typeof end.error === "string") return { error: end.error };
  if (typeof end.exit_code === "number" && typeof end.exit_signal === "number")
    return { exit_code: end.exit_code, exit_signal: end.exit_signal };
  throw new Error("exec stream: malformed end frame");
}

/** The buffer a relayed connection reads into, used again for every read. */
export const RELAY_READ_BYTES = 128 * 1024;

/** Connections opened by `connectForRelay`, and what their reads go to. */
const relayedReads = new WeakMap<Socket, ReusedReads>();

/**
 * `net.connect`, for a connection whose bytes only go on to another socket (`pipeBothWays`): it reads
 * into one buffer used again for every read (net's `onread`) instead of a new one per read. A
 * relay that allocates per read makes the allocator hand back and fault in fresh pages for every
 * chunk, and the garbage collector sweep them: in the gateway's port tunnels that was a large share
 * of the relay's CPU.
 */
export function connectForRelay(options: Omit<TcpNetConnectOpts, "onread">): Socket {
  const reads = new ReusedReads();
  const socket = connect({ ...options, onread: reads.onread });
  reads.source = socket;
  relayedReads.set(socket, reads);
  return socket;
}

/** What `adoptForRelay` needs of a socket's handle (Node's TCP wrap, `socket._handle`). */
interface StreamHandle {
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
}

/**
 * A connection a server accepted (a `net` server's, or an HTTP server's after an upgrade), taken over
 * for a relay (`pipeBothWays`), so that its reads go into one reused buffer as `connectForRelay`'s
 * do: Node's API gives `onread` only to sockets it connects, so the accepted socket's handle is moved
 * into a new `Socket` made with it. Bytes the accepted socket had already read are relayed first.
 * The two sockets end together: the accepted one (which its server counts, and may destroy) closes
 * when the new one does, and destroying it destroys the new one. Returns `accepted` itself, to be
 * piped as before, where this cannot be done safely: a TLS socket, one with no TCP handle, one whose
 * end has been read or with writes pending.
 */
export function adoptForRelay(accepted: Socket): Socket {
  const inner = accepted as Socket & { _handle?: Partial<StreamHandle> | null };
  const handle = inner._handle;
  if (
    accepted instanceof TLSSocket ||
    accepted.destroyed ||
    !isReadable(accepted) ||
    accepted.writableEnded ||
    accepted.writableLength > 0 ||
    typeof handle?.readStop !== "function" ||
    typeof handle.useUserBuffer !== "function"
  )
    return accepted;
  // What the stream holds already (read from the handle before the relay existed), all of it, then no
  // more reads.
  accepted.pause();
  const early =
    accepted.readableLength > 0 ? (accepted.read(accepted.readableLength) as Buffer | null) : null;
  handle.readStop();
  accepted.setTimeout(0);
  // The accepted socket no longer owns the handle: destroying it closes nothing but itself.
  inner._handle = null;
  const reads = new ReusedReads();
  const adopted = new Socket({
    handle,
    allowHalfOpen: accepted.allowHalfOpen,
    onread: reads.onread,
    pauseOnCreate: true,
  } as ConstructorParameters<typeof Socket>[0]);
  reads.source = adopted;
  if (early && early.length > 0) reads.keepEarly(early);
  relayedReads.set(adopted, reads);
  adopted.once("close", () => accepted.destroy());
  accepted.once("close", () => adopted.destroy());
  // A write to the accepted socket now fails (it has no handle): it ends the relay, never the process.
  accepted.on("error", () => adopted.destroy());
  return adopted;
}

/** The largest HTTP response head `upgradeForRelay` reads. */
const MAX_RESPONSE_HEAD = 16 * 1024;

/**
 * An HTTP/1.1 upgrade made by hand on a `connectForRelay` socket (plain TCP), so that the relay's
 * reads go into the reused buffer from the first byte: `request` is the whole request head (ending
 * with an empty line). Resolves with the socket, ready for `pipeBothWays`, once the server answers
 * 101; with the status alone (the socket destroyed) for any other answer, for the caller to ask
 * again through its HTTP client and read the error. Rejects when the connection fails, the head is
 * malformed or longer than 16 KiB, or nothing completes within `timeoutMs`.
 */
export function upgradeForRelay(
  options: Omit<TcpNetConnectOpts, "onread">,
  request: string,
  timeoutMs: number,
): Promise<{ socket: Socket } | { status: number }> {
  const socket = connectForRelay(options);
  const reads = relayedReads.get(socket) as ReusedReads;
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error("timed out")), timeoutMs);
    const closed = () => fail(new Error("the connection closed before the server answered"));
    socket.once("error", fail);
    socket.once("close", closed);
    // A half-open socket sees the server's end as 'end' alone, and only while it flows (its bytes
    // still go to the reused buffer, not to 'data').
    socket.once("end", closed);
    socket.resume();
    reads.head = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_RESPONSE_HEAD) fail(new Error("the server's answer has no end of head"));
        return undefined;
      }
      clearTimeout(timer);
      socket.removeListener("error", fail);
      socket.removeListener("close", closed);
      socket.removeListener("end", closed);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString("latin1"))?.[1];
      if (status === undefined) {
        fail(new Error("the server's answer is not HTTP/1.1"));
        return Buffer.alloc(0);
      }
      if (status !== "101") {
        socket.destroy();
        resolve({ status: Number(status) });
        return Buffer.alloc(0);
      }
      resolve({ socket });
      return Buffer.from(head.subarray(end + 4));
    };
    socket.write(request);
  });
}

/**
 * The reads of a `connectForRelay` socket: each chunk is written to the other end before the buffer
 * is read into again. A write the kernel does not take at once (the other end is slow) keeps the
 * buffer until it completes, and reading waits for it, as `pipe` would. A chunk that arrives before
 * the other end is known is copied and kept for it, and reading waits for the other end.
 */
class ReusedReads {
  source: Socket | undefined;
  readonly #buffer = Buffer.allocUnsafeSlow(RELAY_READ_BYTES);
  #to: Socket | undefined;
  #early: Buffer | undefined;
  /** The write the reading waits for (its sequence number), 0 when it waits for none. */
  #waitingFor = 0;
  #writes = 0;

  readonly onread = {
    buffer: this.#buffer,
    callback: (n: number): boolean => this.#read(n),
  };

  /** Set while an HTTP response head is awaited (upgradeForRelay): chunks go to it until it ends. */
  head: ((chunk: Buffer) => Buffer | undefined) | undefined;

  #read(n: number): boolean {
    const chunk = this.#buffer.subarray(0, n);
    if (this.head) {
      // The head's reader keeps what it needs; what came after the head is kept for the relay.
      const rest = this.head(chunk);
      if (rest === undefined) return true;
      this.head = undefined;
      if (rest.length > 0) this.#early = rest;
      return false;
    }
    const to = this.#to;
    if (!to) {
      this.keepEarly(chunk);
      return false;
    }
    const id = ++this.#writes;
    to.write(chunk, () => {
      if (this.#waitingFor !== id) return;
      this.#waitingFor = 0;
      this.source?.resume();
    });
    // Nothing left queued: the kernel has the bytes, and the buffer is free for the next read.
    if (to.writableLength === 0) return true;
    this.#waitingFor = id;
    return false;
  }

  /** Bytes read before the relay began (copied), written first once the other end is known. */
  keepEarly(chunk: Buffer): void {
    this.#early = this.#early ? Buffer.concat([this.#early, chunk]) : Buffer.from(chunk);
  }

  relayTo(to: Socket): void {
    const source = this.source;
    if (!source) throw new Error("relayTo before the socket was made");
    this.#to = to;
    if (this.#early) to.write(this.#early);
    this.#early = undefined;
    source.once("end", () => to.end());
    // Reading again if an early chunk stopped it, and flowing, so that the end of the stream is seen:
    // the bytes themselves never enter the stream.
    source.resume();
  }
}

/**
 * Pipes two sockets into each other (a tunnel and its other end), each end passed on as it comes
 * (the sockets should allow half-open), with no work per chunk (a `connectForRelay` socket's reads
 * go through its reused buffer); an error or a close on either side tears both down.
 */
export function pipeBothWays(a: Socket, b: Socket): void {
  const teardown = () => {
    a.destroy();
    b.destroy();
  };
  // One side already gone (reset before the relay began): its close has been and will not come again.
  if (a.destroyed || b.destroyed) {
    teardown();
    return;
  }
  a.on("error", teardown);
  b.on("error", teardown);
  a.on("close", teardown);
  b.on("close", teardown);
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    const reads = relayedReads.get(from);
    if (reads) reads.relayTo(to);
    else from.pipe(to);
  }
}

import type { Socket } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { ExecFrameDecoder, ExecFrameKind, parseExecEnd } from "@hangar/config";
import { InvalidArgumentError } from "commander";
import { CliError } from "./cli-error.js";

/** `hangar proxy`'s ports: `<local>[:<remote>]`, the remote port being the local one when not given. */
export function parseProxyPorts(spec: string): { local: number; remote: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(spec);
  const local = Number(m?.[1]);
  const remote = m?.[2] === undefined ? local : Number(m[2]);
  // Local port 0: any free port, printed once listening; a remote port must be a real one.
  if (!m || local > 65_535 || remote < 1 || remote > 65_535)
    throw new InvalidArgumentError(
      "expected <local>[:<remote>], ports 1-65535 (local 0: any free port), e.g. 15432:5432",
    );
  return { local, remote };
}

/** Where an exec session's output goes, and where its input comes from. */
export interface ConsoleIO {
  out(text: string): void;
  err(text: string): void;
  /** The local input, passed on as it comes; its end (or its absence) is the remote command's end of input. */
  stdin?: NodeJS.ReadableStream;
}

/**
 * Runs an exec tunnel to its end: relays stdin in, prints the framed output, and resolves to the
 * remote command's exit status (128 + n after a death by signal n).
 */
export function runConsoleSession(socket: Socket, io: ConsoleIO): Promise<number> {
  const decoder = new ExecFrameDecoder();
  const text = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
  const forward = (chunk: Buffer | string) => socket.write(chunk);
  const endInput = () => socket.end();
  // No input at all (the CLI run in-process) is an empty one: the command reads its end at once.
  if (io.stdin) {
    io.stdin.on("data", forward);
    io.stdin.once("end", endInput);
  } else endInput();
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: { code: number } | { error: Error }) => {
      if (settled) return;
      settled = true;
      io.stdin?.off("data", forward);
      io.stdin?.off("end", endInput);
      socket.destroy();
      if ("code" in outcome) resolve(outcome.code);
      else reject(outcome.error);
    };
    socket.on("data", (chunk: Buffer) => {
      let frames: ReturnType<ExecFrameDecoder["push"]>;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        finish({ error: err as Error });
        return;
      }
      for (const { kind, payload } of frames) {
        if (kind === ExecFrameKind.stdout) io.out(text.stdout.write(payload));
        else if (kind === ExecFrameKind.stderr) io.err(text.stderr.write(payload));
        else {
          io.out(text.stdout.end());
          io.err(text.stderr.end());
          const end = parseExecEnd(payload);
          if ("error" in end) finish({ error: new CliError(end.error) });
          else finish({ code: end.exit_signal !== 0 ? 128 + end.exit_signal : end.exit_code });
          return;
        }
      }
    });
    socket.once("error", (err) => finish({ error: new CliError(`the tunnel failed: ${err.message}`) }));
    socket.once("close", () =>
      finish({ error: new CliError("the tunnel closed before the command ended", "try again") }),
    );
  });
}

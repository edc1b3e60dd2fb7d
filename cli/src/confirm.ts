import { createInterface } from "node:readline";
import { CliError } from "./cli-error.js";
import type { Context } from "./context.js";

/**
 * Asks a yes/no question on the terminal (default no). Without a terminal (a script, CI) it refuses
 * rather than guess, as flyctl does: `refusal` says what was not done and `--yes` goes through.
 */
export async function confirm(ctx: Context, question: string, refusal: string): Promise<boolean> {
  const input = ctx.stdin;
  if (!input?.isTTY)
    throw new CliError(`${refusal} without confirmation (no terminal to ask on)`, "pass --yes to confirm");
  const rl = createInterface({ input, terminal: false });
  try {
    ctx.err(`${question} [y/N] `);
    const answer = await rl[Symbol.asyncIterator]().next();
    return /^y(es)?$/i.test(String(answer.value ?? "").trim());
  } finally {
    rl.close();
  }
}

import { expect } from "vitest";
import { EdgeError } from "../src/contract.js";

/** The EdgeError a dispatch or deploy rejected with (fails the test when it resolved, or threw something else). */
export async function failure(promise: Promise<unknown>): Promise<EdgeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EdgeError);
  return error as EdgeError;
}

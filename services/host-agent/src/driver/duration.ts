import { parseDuration as parseGoDuration } from "@hangar/config";
import { InvalidDurationError } from "./errors.js";

/**
 * Parses a Go duration string ("10s", "500ms", "1m30s", "1.5h", "0") into milliseconds, as
 * @hangar/config does for the API; a malformed one is the driver's InvalidDurationError.
 */
export function parseDuration(input: string): number {
  try {
    return parseGoDuration(input);
  } catch (err) {
    if (err instanceof RangeError) throw new InvalidDurationError(input);
    throw err;
  }
}

import { lookup as dnsLookup } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { isPrivateAddress, publicOnlyLookup } from "@hangar/service";

/** A webhook target refused: its address is private and the operator did not allow that. */
export class TargetRefusedError extends Error {
  override readonly name = "TargetRefusedError";
}

/**
 * Why a target is refused: the platform's control plane lives on private addresses, so webhooks reach
 * public ones only unless HANGAR_WEBHOOKS_ALLOW_PRIVATE_TARGETS (docs/webhooks.md "What a webhook may reach").
 */
function refusal(host: string, address: string): TargetRefusedError {
  return new TargetRefusedError(
    `${host} is ${address}, a private, loopback or link-local address, which webhooks may not reach`,
  );
}

/** The host of a URL as net.connect takes it (IPv6 without brackets). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/**
 * The DNS lookup of webhook requests: private answers refused at connect time too (not only when the
 * webhook was made), unless allowed; then the system's own lookup.
 */
export function webhookLookup(allowPrivate: boolean): LookupFunction | undefined {
  return allowPrivate ? undefined : publicOnlyLookup(refusal);
}

/** Whether a URL's host is an IP literal webhooks may not reach. */
export function refusedLiteral(host: string, allowPrivate: boolean): TargetRefusedError | undefined {
  return isIP(host) !== 0 && !allowPrivate && isPrivateAddress(host) ? refusal(host, host) : undefined;
}

/**
 * Checks a webhook's URL when it is made: its host must resolve, and (unless allowed) to public
 * addresses only. Throws TargetRefusedError with a message that says why.
 */
export async function checkTarget(url: URL, allowPrivate: boolean): Promise<void> {
  const host = hostOf(url);
  const addresses: string[] = isIP(host)
    ? [host]
    : await new Promise((resolve, reject) =>
        dnsLookup(host, { all: true }, (err, found) =>
          err
            ? reject(new TargetRefusedError(`${host} does not resolve (${err.code ?? err.message})`))
            : resolve(found.map((a) => a.address)),
        ),
      );
  if (allowPrivate) return;
  const bad = addresses.find(isPrivateAddress);
  if (bad) throw refusal(host, bad);
}

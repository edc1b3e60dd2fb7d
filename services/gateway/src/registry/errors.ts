import {
  BlobNotFoundError,
  DigestMismatchError,
  InvalidReferenceError,
  ManifestBlobUnknownError,
  ManifestInvalidError,
} from "@hangar/oci";

/** The Distribution spec's error codes and the HTTP status each is sent with. */
export const REGISTRY_ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 404,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  PAGINATION_NUMBER_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  RANGE_INVALID: 416,
} as const;

export type RegistryErrorCode = keyof typeof REGISTRY_ERROR_STATUS;

/** The Distribution spec's error body. */
export interface RegistryErrorBody {
  errors: Array<{ code: string; message: string; detail?: unknown }>;
}

/** An error of the /v2 API, sent in the Distribution spec's shape. */
export class RegistryError extends Error {
  override readonly name = "RegistryError";
  readonly status: number;

  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly detail?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
    // The spec has no code of its own for a bad Content-Range; it answers 416 with BLOB_UPLOAD_INVALID.
    this.status = REGISTRY_ERROR_STATUS[code];
  }

  toJSON(): RegistryErrorBody {
    const code = this.code === "RANGE_INVALID" ? "BLOB_UPLOAD_INVALID" : this.code;
    return {
      errors: [{ code, message: this.message, ...(this.detail !== undefined && { detail: this.detail }) }],
    };
  }
}

/** Maps @hangar/oci's errors onto the spec's codes; anything else is not a client error and stays as it is. */
export function toRegistryError(error: unknown): unknown {
  if (error instanceof RegistryError) return error;
  if (error instanceof DigestMismatchError) {
    return new RegistryError(
      "DIGEST_INVALID",
      error.message,
      { expected: error.expected, actual: error.actual },
      { cause: error },
    );
  }
  if (error instanceof BlobNotFoundError)
    return new RegistryError("BLOB_UNKNOWN", error.message, { digest: error.digest });
  if (error instanceof ManifestBlobUnknownError) {
    return new RegistryError("MANIFEST_BLOB_UNKNOWN", error.message, { digest: error.digest });
  }
  if (error instanceof ManifestInvalidError) return new RegistryError("MANIFEST_INVALID", error.message);
  if (error instanceof InvalidReferenceError) return new RegistryError("NAME_INVALID", error.message);
  return error;
}

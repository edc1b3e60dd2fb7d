/** Base of every error this package throws: a stable machine `code` beside the message. */
export class OciError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Content did not hash to the digest it was announced with; nothing was stored. */
export class DigestMismatchError extends OciError {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super("digest_mismatch", `content hashes to ${actual}, not the expected ${expected}`);
  }
}

/** A blob asked for by digest is not in the blob store. */
export class BlobNotFoundError extends OciError {
  constructor(readonly digest: string) {
    super("blob_unknown", `blob ${digest} is not in the blob store; push it first`);
  }
}

/** A manifest refers to a config or layer blob the blob store does not hold. */
export class ManifestBlobUnknownError extends OciError {
  constructor(readonly digest: string) {
    super(
      "manifest_blob_unknown",
      `manifest refers to blob ${digest}, which is not in the blob store; push the blob first`,
    );
  }
}

/** A manifest is not JSON of a known manifest media type, or its content does not match its reference. */
export class ManifestInvalidError extends OciError {
  constructor(message: string, options?: ErrorOptions) {
    super("manifest_invalid", message, options);
  }
}

/** An image reference or repository name does not parse. */
export class InvalidReferenceError extends OciError {
  constructor(message: string) {
    super("invalid_reference", message);
  }
}

/** No image in Hangar's registry answers to a reference. */
export class ImageNotFoundError extends OciError {
  constructor(
    readonly ref: string,
    message?: string,
  ) {
    super(
      "image_not_found",
      message ??
        `image ${ref} is not in Hangar's registry; build it with \`hangar deploy\`, or push it with ` +
          `\`skopeo copy docker://<source> docker://<gateway>/<repository>:<tag> --dest-creds x:<token>\``,
    );
  }
}

/** A layer entry would land outside the directory it is applied to, or is of a kind layers cannot hold. */
export class LayerEntryError extends OciError {
  constructor(message: string) {
    super("layer_entry_refused", message);
  }
}

/** A layer's files add up to more than the limit it was applied with; files up to the limit were written. */
export class LayerTooLargeError extends OciError {
  constructor(readonly limitBytes: number) {
    super("layer_too_large", `the layer unpacks to more than ${limitBytes} bytes`);
  }
}

/** A USER spec names a user or group the image's /etc/passwd or /etc/group does not know. */
export class UnknownUserError extends OciError {
  constructor(message: string) {
    super("unknown_user", message);
  }
}

/** mount, umount or another system tool failed. */
export class SystemToolError extends OciError {
  constructor(message: string, options?: ErrorOptions) {
    super("system_tool_failed", message, options);
  }
}

/** A remote registry refused the credentials it was given, or asked for some and had none. */
export class RegistryAuthError extends OciError {
  constructor(
    readonly ref: string,
    readonly host: string,
    detail?: string,
  ) {
    super(
      "registry_auth_failed",
      `authentication failed for ${ref}: check the registry credentials (hangar registry login ${host})` +
        (detail ? ` (${detail})` : ""),
    );
  }
}

/** A remote registry could not be reached or answered with an error after the retries. */
export class RemoteRegistryError extends OciError {
  constructor(
    readonly ref: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super("registry_unavailable", message, options);
  }
}

/** A blob a remote registry sent does not hash to its digest (or size); nothing of it was stored. */
export class BlobCorruptedError extends OciError {
  constructor(
    readonly ref: string,
    readonly digest: string,
    detail: string,
  ) {
    super(
      "blob_corrupted",
      `blob ${digest} of ${ref} is corrupted: ${detail}; nothing of it was stored (pull again, or check the registry)`,
    );
  }
}

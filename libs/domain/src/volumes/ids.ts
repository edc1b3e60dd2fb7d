// The shapes of volume ids, snapshot ids and volume names: the one check the volume service, the
// host agent (ids become file names), the gateway (a bad one is a 400) and the CLI (refused before
// any call) all use. No imports, so the CLI loads it alone (`@hangar/domain/volume-ids`).

/** A volume id as newVolumeId makes them (and Fly shows them): `vol_` and 16 lowercase letters or digits. */
export const VOLUME_ID_PATTERN = /^vol_[0-9a-z]{16}$/;
/** A snapshot id as newSnapshotId makes them: `vs_` and 16 lowercase letters or digits. */
export const SNAPSHOT_ID_PATTERN = /^vs_[0-9a-z]{16}$/;
/** A volume name as Fly allows it: 1 to 30 lowercase letters, digits or underscores. */
export const VOLUME_NAME_PATTERN = /^[a-z0-9_]{1,30}$/;

/** An example of each, for messages. */
export const VOLUME_ID_EXAMPLE = "vol_4y5n0k13m9gr0gvw";
export const SNAPSHOT_ID_EXAMPLE = "vs_2a4kdv0vj3gq1b8e";

/** True for a string shaped as newVolumeId makes them. */
export function isVolumeId(id: string): boolean {
  return VOLUME_ID_PATTERN.test(id);
}

/** True for a string shaped as newSnapshotId makes them. */
export function isSnapshotId(id: string): boolean {
  return SNAPSHOT_ID_PATTERN.test(id);
}

/** Why a volume name is refused, or undefined when Fly would take it (lowercase alnum and _, 1..30). */
export function volumeNameProblem(name: string): string | undefined {
  if (!VOLUME_NAME_PATTERN.test(name))
    return `volume name ${JSON.stringify(name)} must be 1 to 30 lowercase letters, digits or underscores`;
  return undefined;
}

/**
 * The run's shared folder of unpacked layers (HANGAR_LAYERS_DIR, which the global setup makes unless
 * the caller set one) as builder options take it: `{ layersDir }`, or nothing outside such a run.
 */
export function sharedLayersDir(): { layersDir?: string } {
  const layersDir = process.env.HANGAR_LAYERS_DIR;
  return layersDir ? { layersDir } : {};
}

export type { VolumeServiceOptions } from "./volume-service.js";
export { VolumeService } from "./volume-service.js";

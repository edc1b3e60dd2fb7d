export { HostIndex } from "./domain/host-index.js";
export type { GuestRequest, PlacementStrategy } from "./domain/rank.js";
export { noRoomMessage } from "./domain/rank.js";
export type { PlacementOptions } from "./placement.js";
export { Placement } from "./placement.js";

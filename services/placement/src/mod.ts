export type { GuestRequest, PlacementStrategy } from "./domain/rank.js";
export { noRoomMessage, rankHosts } from "./domain/rank.js";
export type { PlacementOptions } from "./placement.js";
export { Placement } from "./placement.js";

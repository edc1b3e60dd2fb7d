// The whole standard library: `@hangar/edge-std` and `@fly/fly`.
export {
  type Backend,
  type BackendStats,
  type BalancerFetch,
  type BalancerOptions,
  balancer,
} from "./balancer.js";
export { type CacheSetOptions, type CacheValue, cache } from "./cache.js";
export { Image, type ImageInput, type ImageResult, image } from "./image.js";
export { type MountHandler, mount } from "./mount.js";
export { type ProxyFetch, type ProxyOptions, proxy } from "./proxy.js";
export type { Handler, RequestInput } from "./request.js";

/** fast-text-encoding ships no types: it defines TextEncoder and TextDecoder on its scope. */
declare module "fast-text-encoding";

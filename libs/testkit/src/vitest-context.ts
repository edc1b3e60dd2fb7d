// The import makes this a module (so the block below augments vitest rather than replacing it) and puts
// vitest in the program, without which tsc cannot find the module being augmented.
import type {} from "vitest";

// What global-setup.ts provides to every test file, so `inject("natsUrl")` is typed.
declare module "vitest" {
  export interface ProvidedContext {
    natsUrl: string;
    postgresUrl: string;
  }
}

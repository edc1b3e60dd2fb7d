// The fly.toml files in public/: where each comes from (also in README.md) and the warnings it loads with.
// A warning is expected only for a key Hangar documents it does not act on yet (UNSUPPORTED_KEYS, a GPU),
// or for a key flyctl itself does not recognise (`fly config validate --strict` lists it as unrecognised).
// Keys old flyctl versions generated and nothing reads (experimental.allowed_public_ports) load silently.

/** One public fly.toml: its source and the warnings Hangar gives it. */
export interface PublicFile {
  file: string;
  /** What kind of app it is. */
  kind: string;
  repo: string;
  path: string;
  commit: string;
  licence: string;
  warnings: string[];
}

/**
 * Keys in these files that flyctl does not recognise either (no field of fly-go's MachinePort; `fly config
 * validate --strict` lists it) and that no flyctl ever wrote: Hangar's "unknown key" warning is expected
 * for them and for nothing else.
 */
export const UNRECOGNISED_BY_FLYCTL = ["services.ports.protocol"];

export const PUBLIC_FILES: PublicFile[] = [
  {
    file: "remix-epic-stack.toml",
    kind: "Remix",
    repo: "epicweb-dev/epic-stack",
    path: "fly.toml",
    commit: "f64d690722d8260a055bb63b042de877ab3f6a18",
    licence: "MIT",
    warnings: ["remix-epic-stack.toml:6: swap_size_mb is not supported by Hangar (ignored)"],
  },
  {
    file: "remix-indie-stack.toml",
    kind: "Remix",
    repo: "remix-run/indie-stack",
    path: "fly.toml",
    commit: "56abb93bf81f635b574d9ca23eed05602699458a",
    licence: "MIT",
    warnings: ["remix-indie-stack.toml:6: swap_size_mb is not supported by Hangar (ignored)"],
  },
  {
    file: "remix-blues-stack.toml",
    kind: "Remix",
    repo: "remix-run/blues-stack",
    path: "fly.toml",
    commit: "7390646d6f3b6e6cb7ef722e4b61cdbffb997afc",
    licence: "MIT",
    warnings: [
      "remix-blues-stack.toml:6: swap_size_mb is not supported by Hangar (ignored)",
      "remix-blues-stack.toml:13: metrics is not supported by Hangar (ignored)",
    ],
  },
  {
    file: "phoenix-live-beats.toml",
    kind: "Phoenix",
    repo: "fly-apps/live_beats",
    path: "fly.toml",
    commit: "ac9780472e7019af274110a1cf71250a8d40c986",
    licence: "MIT",
    warnings: [],
  },
  {
    file: "phoenix-hello-elixir.toml",
    kind: "Phoenix",
    repo: "fly-apps/hello_elixir",
    path: "fly.toml",
    commit: "b5811d3a166f7fa6261e0f287e433691d204f5b2",
    licence: "Apache-2.0",
    warnings: [],
  },
  {
    file: "phoenix-ash-hq.toml",
    kind: "Phoenix",
    repo: "ash-project/ash_hq",
    path: "fly.toml",
    commit: "d90e367d40ed33201cb4d1bb2ea23b9b7d7da458",
    licence: "MIT",
    warnings: [],
  },
  {
    file: "gleam-packages.toml",
    kind: "Gleam (Erlang VM) web app",
    repo: "gleam-lang/packages",
    path: "fly.toml",
    commit: "e9daa5a131297735a995d9e8e1b7fa912c8a738a",
    licence: "Apache-2.0",
    warnings: [],
  },
  {
    file: "db-postgres-ha.toml",
    kind: "database",
    repo: "fly-apps/postgres-ha",
    path: "fly.toml",
    commit: "44ab26a7cd0c3f8345887e9e7b9f48a73851eaf5",
    licence: "Apache-2.0",
    warnings: [
      "db-postgres-ha.toml:43: experimental.enable_consul is not supported by Hangar (ignored)",
      "db-postgres-ha.toml:46: metrics is not supported by Hangar (ignored)",
    ],
  },
  {
    file: "db-supavisor.toml",
    kind: "database",
    repo: "supabase/supavisor",
    path: "deploy/fly/fly.toml",
    commit: "03e5cc5697904df3b98b2e4a587bbbd5bc054157",
    licence: "Apache-2.0",
    warnings: ["db-supavisor.toml:54: unknown key services[1].ports[0].protocol (ignored)"],
  },
  {
    file: "db-corrosion.toml",
    kind: "database",
    repo: "superfly/corrosion",
    path: "examples/fly/fly.toml",
    commit: "0d0dd7a6620d9b16ab8e6cc0aba1912d7b5050d1",
    licence: "Apache-2.0",
    warnings: ["db-corrosion.toml:11: metrics is not supported by Hangar (ignored)"],
  },
  {
    file: "db-corrosion-antithesis.toml",
    kind: "database",
    repo: "superfly/corrosion",
    path: ".antithesis/corrosion/fly.toml",
    commit: "0d0dd7a6620d9b16ab8e6cc0aba1912d7b5050d1",
    licence: "Apache-2.0",
    warnings: ["db-corrosion-antithesis.toml:11: metrics is not supported by Hangar (ignored)"],
  },
  {
    file: "db-litefs.toml",
    kind: "database",
    repo: "superfly/litefs",
    path: "fly.toml",
    commit: "2adba0223deadedb9821112fb12c8a6f747d0e3d",
    licence: "Apache-2.0",
    warnings: [],
  },
  {
    file: "worker-cron-manager.toml",
    kind: "worker",
    repo: "fly-apps/cron-manager",
    path: "fly.toml",
    commit: "6afda48c47356c0efabaa872ee4091a63043ff2b",
    licence: "Apache-2.0",
    warnings: [],
  },
  {
    file: "go-tokenizer.toml",
    kind: "Go service",
    repo: "superfly/tokenizer",
    path: "fly.toml",
    commit: "a60499d50d168b57492fc5e75069d82d622a931a",
    licence: "Apache-2.0",
    warnings: [],
  },
  {
    file: "gpu-ollama-open-webui.toml",
    kind: "GPU app",
    repo: "fly-apps/ollama-open-webui",
    path: "fly.toml",
    commit: "701024d497ba62853b296550e022df5f1d229e52",
    licence: "MIT",
    warnings: [
      "gpu-ollama-open-webui.toml:27: vm[0] asks for a GPU (gpu_kind l40s): Hangar has no GPU hosts yet",
    ],
  },
  {
    file: "rails-litestream.toml",
    kind: "Rails",
    repo: "fly-apps/dockerfile-rails",
    path: "test/results/litestream/fly.toml",
    commit: "88e783051f2899134362587293026afd97309ef4",
    licence: "MIT",
    warnings: [],
  },
  {
    file: "rails-sidekiq.toml",
    kind: "Rails",
    repo: "fly-apps/dockerfile-rails",
    path: "test/results/sidekiq/fly.toml",
    commit: "88e783051f2899134362587293026afd97309ef4",
    licence: "MIT",
    warnings: [],
  },
  {
    file: "rails-solid-queue-postgres.toml",
    kind: "Rails",
    repo: "fly-apps/dockerfile-rails",
    path: "test/results/solid_queue_postgres/fly.toml",
    commit: "88e783051f2899134362587293026afd97309ef4",
    licence: "MIT",
    warnings: [],
  },
  {
    file: "rails-sqlite3.toml",
    kind: "Rails",
    repo: "fly-apps/dockerfile-rails",
    path: "test/results/sqlite3/fly.toml",
    commit: "88e783051f2899134362587293026afd97309ef4",
    licence: "MIT",
    warnings: [],
  },
  {
    file: "node-litefs.toml",
    kind: "Node",
    repo: "fly-apps/dockerfile-node",
    path: "test/base/litefs/fly.toml",
    commit: "51f1c4d3fccfa2d012ac69c06ed399842dbf916d",
    licence: "MIT",
    warnings: [],
  },
  {
    file: "node-sqlite3.toml",
    kind: "Node",
    repo: "fly-apps/dockerfile-node",
    path: "test/fly/sqlite3/fly.toml",
    commit: "51f1c4d3fccfa2d012ac69c06ed399842dbf916d",
    licence: "MIT",
    warnings: [],
  },
];

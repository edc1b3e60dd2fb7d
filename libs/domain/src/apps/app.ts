import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";
import { APP_NAME_PATTERN } from "./names.js";

const messages = { AppCreated: hangar.v1.AppCreated, AppDestroyed: hangar.v1.AppDestroyed };

/** An app's events, as its decider sees them. */
export type AppEvent = EventOf<typeof messages>;

/** The APPS stream: one subject per app, `ev.app.<name>`. */
export const appsStream = defineStream({
  name: "APPS",
  subjectPrefix: "ev.app",
  codec: eventCodec(messages),
});

export type AppState =
  | { status: "absent" }
  | { status: "created" | "destroyed"; name: string; orgSlug: string; network: string };

export type AppCommand =
  | { type: "CreateApp"; name: string; orgSlug: string; network?: string }
  | { type: "DestroyApp" };

/**
 * Names no app may take: a registry repository belongs to the app its first segment names, and
 * `library/...` holds the platform's base images (library/node), which an app named `library` would
 * own; `hangar/...` holds the platform's own images (hangar/postgres-member, every cluster member's).
 */
export const RESERVED_APP_NAMES: ReadonlySet<string> = new Set(["library", "hangar"]);

/** The app aggregate: created once under a valid name, destroyed once. */
export const appDecider: Decider<AppState, AppCommand, AppEvent> = {
  initialState: () => ({ status: "absent" }),
  decide(command, state) {
    switch (command.type) {
      case "CreateApp": {
        if (state.status !== "absent")
          throw new DomainError(`app ${command.name} already exists`, "already_exists");
        if (RESERVED_APP_NAMES.has(command.name))
          throw new DomainError(
            `app name ${command.name} is reserved by the platform: pick another`,
            "already_exists",
          );
        if (!APP_NAME_PATTERN.test(command.name)) {
          throw new DomainError(
            `invalid app name ${JSON.stringify(command.name)}: use 1-63 lowercase letters, digits and dashes, not starting or ending with a dash`,
            "invalid_argument",
          );
        }
        const network = command.network ?? "default";
        return [{ type: "AppCreated", data: { name: command.name, orgSlug: command.orgSlug, network } }];
      }
      case "DestroyApp":
        if (state.status !== "created") throw new DomainError("app not found", "not_found");
        return [{ type: "AppDestroyed", data: { name: state.name } }];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case "AppCreated":
        return {
          status: "created",
          name: event.data.name ?? "",
          orgSlug: event.data.orgSlug ?? "",
          network: event.data.network ?? "",
        };
      case "AppDestroyed":
        return state.status === "absent" ? state : { ...state, status: "destroyed" };
    }
  },
};

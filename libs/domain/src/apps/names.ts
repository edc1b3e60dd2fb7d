// The shape of app names, with no imports so that light readers (the CLI, names of other aggregates
// that are app names, such as Postgres clusters) can load it alone.

/** Fly's rule: app names become DNS labels (1-63 lowercase letters, digits and dashes, no dash at either end). */
export const APP_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

import { Hono } from "hono";
import type { ScalingView } from "../scaling/catalog.js";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";
import { appFor } from "./params.js";

/** What the scaling route reads: the app's autoscaler decisions, and whether the app exists. */
export interface ScalingReader {
  scalingOf(app: string, limit?: number): ScalingView;
  appExists(app: string): boolean;
}

/** `GET /apps/{app}/scaling?limit=N` (Hangar's own): the autoscaler's recent decisions, newest first. */
export function scalingRoutes(reader: ScalingReader): Hono<ApiEnv> {
  return new Hono<ApiEnv>().get("/apps/:app_name/scaling", (c) => {
    const app = appFor(c, "read");
    if (!reader.appExists(app)) throw ApiError.of("not_found", `app ${app} not found`);
    const raw = c.req.query("limit");
    const limit = raw === undefined ? 20 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 50)
      throw ApiError.of("invalid_argument", "limit: expected a whole number from 1 to 50");
    return c.json(reader.scalingOf(app, limit));
  });
}

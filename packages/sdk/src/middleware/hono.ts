import { type GuardOptions, guard } from "./guard.js";

/** The parts of Hono's Context the middleware uses. */
interface Ctx {
  req: { header(name: string): string | undefined };
  header(name: string, value: string): void;
  json(body: unknown, status?: number, headers?: Record<string, string>): Response;
  res: Response;
}

/**
 * Hono middleware (any runtime Hono runs on): same behaviour as the Express middleware.
 *
 * @example app.use("/api/*", tollgateHono({ client, identify: (c) => ({ customer: c.get("org") }) }))
 */
export function tollgateHono<C extends Ctx = Ctx>(options: GuardOptions<C>) {
  return async (c: C, next: () => Promise<void>): Promise<Response | undefined> => {
    const outcome = await guard(options, c, (name) => c.req.header(name));
    if (!outcome.allowed) {
      // biome-ignore lint/suspicious/noExplicitAny: Hono types status as a literal union
      return c.json(outcome.body, outcome.status as any, outcome.headers);
    }
    for (const [name, value] of Object.entries(outcome.headers)) c.header(name, value);
    try {
      await next();
    } catch (error) {
      outcome.finish(500);
      throw error;
    }
    outcome.finish(c.res.status);
    return undefined;
  };
}

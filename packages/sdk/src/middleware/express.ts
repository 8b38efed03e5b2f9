import { type GuardOptions, guard } from "./guard.js";

/** The parts of Express's request and response the middleware uses (express 4 and 5). */
interface Req {
  get?(name: string): string | undefined;
  headers: Record<string, string | string[] | undefined>;
}
interface Res {
  status(code: number): Res;
  set(headers: Record<string, string>): Res;
  json(body: unknown): unknown;
  on(event: "finish", listener: () => void): unknown;
  statusCode: number;
}

const headerOf = (req: Req) => (name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * Express middleware: checks the request's customer against Tollgate's rate limits and quotas, sets
 * X-RateLimit-* and RateLimit headers, and answers 429/402 in the API.md error shape with Retry-After.
 *
 * @example app.use(tollgateExpress({ client, identify: (req) => ({ customer: req.user.org }) }))
 */
export function tollgateExpress<R extends Req = Req>(options: GuardOptions<R>) {
  return (req: R, res: Res, next: (err?: unknown) => void): void => {
    guard(options, req, headerOf(req)).then(
      (outcome) => {
        res.set(outcome.headers);
        if (!outcome.allowed) {
          res.status(outcome.status).json(outcome.body);
          return;
        }
        res.on("finish", () => outcome.finish(res.statusCode));
        next();
      },
      (err) => next(err),
    );
  };
}

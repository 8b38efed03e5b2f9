import { type GuardOptions, guard } from "./guard.js";

interface Req {
  headers: Record<string, string | string[] | undefined>;
}
interface Reply {
  code(status: number): Reply;
  headers(values: Record<string, string>): Reply;
  send(payload?: unknown): Reply;
  raw: { on(event: "finish", listener: () => void): unknown; statusCode: number };
}

/**
 * A Fastify `onRequest` (or `preHandler`) hook with the same behaviour as the Express middleware.
 *
 * @example app.addHook("onRequest", tollgateFastify({ client, identify: (req) => ({ customer: req.user.org }) }))
 */
export function tollgateFastify<R extends Req = Req>(options: GuardOptions<R>) {
  return async (request: R, reply: Reply): Promise<Reply | undefined> => {
    const outcome = await guard(options, request, (name) => {
      const v = request.headers[name];
      return Array.isArray(v) ? v[0] : v;
    });
    reply.headers(outcome.headers);
    if (!outcome.allowed) {
      // An async hook that answers returns the reply, so that Fastify stops there.
      return reply.code(outcome.status).send(outcome.body);
    }
    reply.raw.on("finish", () => outcome.finish(reply.raw.statusCode));
    return undefined;
  };
}

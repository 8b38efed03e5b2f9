import { TollgateError } from "@tollgate/core";
import type { FastifyError, FastifyInstance } from "fastify";

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** "/events/3/values/tokens_in" → "events[3].values.tokens_in". */
function fieldOf(context: string | undefined, e: AjvError): string {
  const parts = e.instancePath.split("/").slice(1);
  if (e.keyword === "required") parts.push(String(e.params.missingProperty));
  if (e.keyword === "additionalProperties") parts.push(String(e.params.additionalProperty));
  let field = "";
  for (const raw of parts) {
    const part = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    field += /^\d+$/.test(part) ? `[${part}]` : field === "" ? part : `.${part}`;
  }
  const prefix = context && context !== "body" ? `${context === "querystring" ? "query" : context}.` : "";
  return `${prefix}${field}` || context || "body";
}

function validationError(error: FastifyError): TollgateError {
  const first = (error.validation?.[0] ?? { instancePath: "", keyword: "", params: {} }) as AjvError;
  const field = fieldOf(error.validationContext, first);
  const details: Record<string, unknown> = { field };
  const index = /^events\[(\d+)\]/.exec(field);
  if (index) details.index = Number(index[1]);
  let message = first.message ?? "is not valid";
  if (first.keyword === "additionalProperties") message = "is not a known field";
  return new TollgateError("INVALID_REQUEST", `${field} ${message}`, details);
}

/** Maps every failure to the API.md error shape; a client's mistake is never a 500. */
export function toTollgateError(error: unknown): TollgateError {
  if (error instanceof TollgateError) return error;
  const e = error as FastifyError;
  if (e?.validation) return validationError(e);
  switch (e?.code) {
    case "FST_ERR_BAD_URL":
      return new TollgateError("INVALID_REQUEST", "the URL is not valid", { field: "path" });
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new TollgateError("INVALID_REQUEST", "a path segment is too long", { field: "path" });
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new TollgateError("PAYLOAD_TOO_LARGE", "request body is larger than 1 MiB");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new TollgateError("INVALID_REQUEST", "Content-Type must be application/json", {
        field: "content-type",
      });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new TollgateError("INVALID_REQUEST", "request body is empty", { field: "body" });
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new TollgateError("INVALID_REQUEST", "request body is not valid JSON", { field: "body" });
  }
  if (e instanceof SyntaxError || e?.statusCode === 400) {
    return new TollgateError("INVALID_REQUEST", "request body is not valid JSON", { field: "body" });
  }
  if (e?.statusCode === 413) return new TollgateError("PAYLOAD_TOO_LARGE", "request body is too large");
  if (e?.statusCode === 415) {
    return new TollgateError("INVALID_REQUEST", "Content-Type must be application/json", {
      field: "content-type",
    });
  }
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new TollgateError("INVALID_REQUEST", e.message || "bad request");
  }
  return new TollgateError("INTERNAL", "internal error");
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const te = toTollgateError(error);
    if (te.status >= 500) request.log.error({ err: error }, "request failed");
    reply.code(te.status).send(te.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(
        new TollgateError("NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`).toBody(),
      );
  });
}

/**
 * Reading a request's inputs: a JSON body, and a query or body checked
 * against its zod schema, each failure a 400 that says what was wrong.
 */
import type { z } from "zod";
import { ApiError } from "./errors.ts";

export function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const source = input instanceof URLSearchParams ? Object.fromEntries(input) : input;
  const result = schema.safeParse(source);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
  throw new ApiError(400, "bad_request", `${where}${issue?.message ?? "invalid input"}`);
}

export function jsonOf(body: { readonly text: string } | null): unknown {
  try {
    return JSON.parse(body?.text ?? "");
  } catch (error) {
    throw new ApiError(
      400,
      "bad_request",
      `the body is not valid JSON: ${(error as Error).message}`,
    );
  }
}

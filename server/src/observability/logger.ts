/**
 * Structured JSON logs (pino). Tokens and document content never reach a log
 * line: the redaction list below is a second line of defence, the first is
 * not passing them to the logger at all.
 */
import { type Logger, pino } from "pino";
import type { LogLevel } from "../config.ts";

export type { Logger };

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "collab-server" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ["token", "*.token", "headers.authorization", "headers.cookie"],
        censor: "[redacted]",
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

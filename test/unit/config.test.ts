import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_CONFIG,
  flagName,
  parseConfig,
  SETTINGS,
  showDefault,
} from "../../server/src/config.ts";
import { isCollabError } from "../../server/src/errors.ts";

describe("configuration", () => {
  it("[CONF1] defaults are the documented ones", () => {
    expect(DEFAULT_CONFIG).toMatchObject({
      host: "127.0.0.1",
      port: 1234,
      dataDir: "./data",
      store: "leveldb",
      fsync: false,
      wsCompression: "off",
      wsCompressionMinBytes: 1024,
    });
    expect(parseConfig({})).toEqual(DEFAULT_CONFIG);
  });

  it("[CONF1] values are parsed and validated with a message naming the variable", () => {
    expect(parseConfig({ port: "0", fsync: "true", maxDocuments: "5" })).toMatchObject({
      port: 0,
      fsync: true,
      maxDocuments: 5,
    });
    expect(() => parseConfig({ port: "12.5" })).toThrow(
      'PORT must be an integer 0-65535, got "12.5"',
    );
    expect(() => parseConfig({ port: "-1" })).toThrow('PORT must be an integer 0-65535, got "-1"');
    // -1 is the one negative value a setting takes: no broadcast merging.
    expect(parseConfig({ broadcastBatchMs: "-1" })).toMatchObject({ broadcastBatchMs: -1 });
    expect(() => parseConfig({ broadcastBatchMs: "-2" })).toThrow("BROADCAST_BATCH_MS");
    // WebSocket compression: a mode, and a threshold that may be 0 (compress everything).
    expect(parseConfig({ wsCompression: " ON ", wsCompressionMinBytes: "0" })).toMatchObject({
      wsCompression: "on",
      wsCompressionMinBytes: 0,
    });
    expect(() => parseConfig({ wsCompression: "yes" })).toThrow(
      'WS_COMPRESSION must be one of off, on, got "yes"',
    );
    expect(() => parseConfig({ wsCompressionMinBytes: "1.5" })).toThrow(
      'WS_COMPRESSION_MIN_BYTES must be an integer 0-1073741824, got "1.5"',
    );
    try {
      parseConfig({ maxDocuments: "0" });
      expect.unreachable();
    } catch (error) {
      expect(isCollabError(error, "CONFIG_INVALID")).toBe(true);
    }
  });

  it("[CONF3] every flag is its environment variable's name, and the CLI reads it back under that setting", () => {
    for (const s of SETTINGS) expect(s.flag.split(" ")[0]).toBe(flagName(s.env));
    expect(flagName("WEBHOOK_URL")).toBe("--webhook-url");
  });

  it("[CONF2] every setting has a unique environment variable and flag", () => {
    expect(new Set(SETTINGS.map((s) => s.env)).size).toBe(SETTINGS.length);
    expect(new Set(SETTINGS.map((s) => s.flag.split(" ")[0])).size).toBe(SETTINGS.length);
  });
});

describe("README", () => {
  it("[CONF2] documents every setting with its flag and default", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    for (const s of SETTINGS) {
      const row = readme.split("\n").find((line) => line.startsWith(`| \`${s.env}\``));
      expect(row, `README has no row for ${s.env}`).toBeDefined();
      expect(row).toContain(`\`${s.flag.split(" ")[0]}\``);
      expect(row).toContain(`\`${showDefault(s.default)}\``);
    }
  });
});

/**
 * HTTPS and `wss://` without a proxy: TLS_CERT and TLS_KEY name PEM files
 * (the certificate may be a chain). They are read and checked at start-up,
 * where a missing, unreadable or mismatched file stops the server with a
 * message naming it, and read again on SIGHUP: connections open at the time
 * keep their session, new ones get the new certificate, and a bad file then
 * is reported and the old certificate kept.
 */
import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import { CollabError } from "../errors.ts";

/** A certificate and its key, checked to belong together. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * Reads and checks the files TLS_CERT and TLS_KEY name. Throws CONFIG_INVALID
 * naming the setting and the file when one cannot be read or they do not
 * make a usable certificate.
 */
export async function loadTlsFiles(paths: {
  readonly cert: string;
  readonly key: string;
}): Promise<TlsFiles> {
  const read = async (setting: string, path: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      const code = (error as { code?: string }).code ?? String(error);
      throw new CollabError("CONFIG_INVALID", `${setting} ${path} cannot be read (${code})`, {
        cause: error,
      });
    }
  };
  const cert = await read("TLS_CERT", paths.cert);
  const key = await read("TLS_KEY", paths.key);
  if (!cert.includes("-----BEGIN CERTIFICATE-----")) {
    throw new CollabError(
      "CONFIG_INVALID",
      `TLS_CERT ${paths.cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString("latin1"))) {
    throw new CollabError(
      "CONFIG_INVALID",
      `TLS_KEY ${paths.key} holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
    );
  }
  try {
    // OpenSSL checks that the key is the certificate's.
    createSecureContext({ cert, key });
  } catch (error) {
    throw new CollabError(
      "CONFIG_INVALID",
      `TLS_CERT ${paths.cert} and TLS_KEY ${paths.key} do not make a usable certificate: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { cert, key };
}

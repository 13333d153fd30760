/**
 * WebSocket compression (permessage-deflate, RFC 7692) as the transport
 * offers it with `WS_COMPRESSION=on`: the `ws` options, and why each is what
 * it is. The figures behind them are in docs/benchmarks.md, "WebSocket
 * compression".
 *
 * What compression costs is mostly memory that stays with a connection: `ws`
 * creates a zlib stream for each direction the first time it needs it and
 * keeps it until the socket closes (resetting it between messages rather
 * than freeing it). A compressor is made for a connection the first time it
 * is sent a message of `minBytes` or more, which in this protocol means its
 * first sync of a document that is not tiny; a decompressor the first time
 * its client sends a compressed message, which browsers do for every
 * message.
 */
import type { PerMessageDeflateOptions } from "ws";

/** How the transport compresses, when it does. */
export interface CompressionOptions {
  /** Messages smaller than this many bytes are sent uncompressed. */
  readonly minBytes: number;
}

/**
 * The compressor's settings, chosen for memory per connection: a 4 KiB window
 * (2^12; zlib's default is 32 KiB), memLevel 4 (of 9) and level 1, the
 * fastest. Measured (`npm run bench compression`, a bare ws server): a
 * connection's two zlib streams take 127 KB of RSS instead of 249 KB with
 * zlib's defaults, and the trace document's state (311,038 bytes)
 * compresses to 127,611 bytes in 8.7 ms instead of 105,980 in 13.8 ms.
 * Smaller windows and memLevels saved little more in a trial (what remains is
 * mostly zlib's hash table, which did not shrink with them) and compressed
 * worse.
 *
 * `ws` refuses an offer that asks for a smaller server window than this
 * (`server_max_window_bits` below 12); no browser asks for one.
 */
const SERVER_WINDOW_BITS = 12;
const DEFLATE = { level: 1, memLevel: 4 } as const;

/**
 * Output chunk of each zlib stream: Node allocates one per stream and keeps
 * it, 16 KiB by default. 4 KiB keeps a large message to a few passes.
 */
const CHUNK_BYTES = 4096;

/**
 * zlib work runs on libuv's thread pool (4 threads by default), which LevelDB's
 * reads and writes share; at most 2 compressions at once leave it room, so
 * that store writes, and so acknowledgements, need not queue behind a burst
 * of initial syncs. `ws` keeps
 * one such limit per process, set by the first connection that negotiates.
 */
const CONCURRENCY = 2;

/**
 * The `perMessageDeflate` option of `ws`' server for `compression`, or
 * `false` (the extension is declined) when it is null.
 */
export function perMessageDeflate(
  compression: CompressionOptions | null,
): PerMessageDeflateOptions | false {
  if (compression === null) return false;
  return {
    // `ws` applies its threshold only without context takeover; with it, every message,
    // however small, would be compressed. It also lets each message be compressed alone.
    serverNoContextTakeover: true,
    threshold: compression.minBytes,
    serverMaxWindowBits: SERVER_WINDOW_BITS,
    // clientMaxWindowBits stays unset: a number would refuse clients that do not offer the
    // parameter (some browsers do not), so the client's window is its own, up to 32 KiB.
    zlibDeflateOptions: { ...DEFLATE, chunkSize: CHUNK_BYTES },
    zlibInflateOptions: { chunkSize: CHUNK_BYTES },
    concurrencyLimit: CONCURRENCY,
  };
}

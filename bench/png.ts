/**
 * Real PNG files of an exact size for the benchmarks, without importing the
 * tests' helper: random RGB pixels (noise, as incompressible as a photo),
 * deflated at level 0 so the file is as large as its pixels, then padded to
 * the byte with a tEXt chunk. The chunk also carries a label, so
 * {@link PngMaker.make} turns one image into any number of files with
 * different bytes (and so different SHA-256 ids) for the cost of a copy.
 * Every file is a valid PNG: it sniffs as image/png (signature and IHDR)
 * and decodes.
 */
import { randomFillSync } from "node:crypto";
import { crc32, deflateSync } from "node:zlib";

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Length, type and CRC around a chunk's data. */
const CHUNK_OVERHEAD = 12;
/** The tEXt keyword and its terminating NUL. */
const KEYWORD = Buffer.from("Comment\0", "latin1");
/** Room kept for the tEXt chunk: its overhead, keyword, and a label. */
const TEXT_ROOM = 256;

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(CHUNK_OVERHEAD + data.byteLength);
  out.writeUInt32BE(data.byteLength, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.byteLength)), 8 + data.byteLength);
  return out;
}

/** Makes PNG files of `size` bytes that share one image of noise and differ in a label. */
export class PngMaker {
  readonly size: number;
  readonly width: number;
  readonly height: number;
  /** Signature, IHDR and IDAT: the same in every file. */
  private readonly image: Buffer;
  private readonly end = chunk("IEND", new Uint8Array(0));

  /** An image `width` pixels wide and as tall as `size` bytes allow. */
  constructor(size: number, width = 512) {
    const rowBytes = 1 + width * 3;
    // Level 0 adds 5 bytes per 64 KiB block plus 6 for zlib's header and checksum.
    const height = Math.floor((size - 2 * TEXT_ROOM) / (rowBytes * (1 + 5 / 65_535)));
    if (height < 1) throw new Error(`a PNG of ${size} bytes is too small`);
    const pixels = Buffer.alloc(rowBytes * height);
    randomFillSync(pixels);
    // Filter byte 0 (none) at the start of every row.
    for (let y = 0; y < height; y++) pixels[y * rowBytes] = 0;
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(height, 4);
    header.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, no filter, no interlace
    this.image = Buffer.concat([
      SIGNATURE,
      chunk("IHDR", header),
      chunk("IDAT", deflateSync(pixels, { level: 0 })),
    ]);
    const room = size - this.image.byteLength - this.end.byteLength;
    if (room < TEXT_ROOM) throw new Error(`no room for the text chunk in ${size} bytes`);
    this.size = size;
    this.width = width;
    this.height = height;
  }

  /** A file of exactly {@link size} bytes whose tEXt chunk says `label` (Latin-1, padded with spaces). */
  make(label: string): Buffer {
    const text = Buffer.from(label, "latin1");
    const dataBytes = this.size - this.image.byteLength - this.end.byteLength - CHUNK_OVERHEAD;
    if (KEYWORD.byteLength + text.byteLength > dataBytes) throw new Error("the label is too long");
    const data = Buffer.alloc(dataBytes, 0x20);
    data.set(KEYWORD, 0);
    data.set(text, KEYWORD.byteLength);
    const file = Buffer.concat([this.image, chunk("tEXt", data), this.end]);
    if (file.byteLength !== this.size) throw new Error("the PNG came out the wrong size");
    return file;
  }
}

/**
 * Word files made for tests: zip archives whose directory lies about the
 * size of their files (zip bombs that pass a check of the declared sizes),
 * and small files that take a lot of memory to read.
 */
import { crc32, deflateRawSync } from "node:zlib";
import { strToU8, zipSync } from "fflate";

const WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

/**
 * A Word file of `count` empty paragraphs: a few KiB that unpack within the archive limits
 * (6 bytes a paragraph) but take the reader hundreds of bytes of memory each.
 */
export function emptyParagraphs(count: number): Uint8Array {
  const xml = `<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="${WORD_NS}"><w:body>${"<w:p/>".repeat(count)}</w:body></w:document>`;
  return zipSync({ "word/document.xml": strToU8(xml) });
}

/**
 * A zip archive of `files`, deflated, in which every file declares `declared` bytes
 * unpacked, in its local header and in the central directory, whatever it really holds.
 */
export function lyingZip(
  files: Record<string, Uint8Array>,
  declared: number,
): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  const directory: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(files)) {
    const path = new TextEncoder().encode(name);
    const compressed = deflateRawSync(data, { level: 9 });
    const fields = { crc: crc32(data), compressed: compressed.byteLength, declared };
    const local = header(30, path, (view) => {
      view.setUint32(0, 0x04034b50, true);
      common(view, 4, fields, path.byteLength);
    });
    const central = header(46, path, (view) => {
      view.setUint32(0, 0x02014b50, true);
      view.setUint16(4, 20, true); // made by
      common(view, 6, fields, path.byteLength);
      view.setUint32(42, offset, true);
    });
    parts.push(local, compressed);
    directory.push(central);
    offset += local.byteLength + compressed.byteLength;
  }
  const size = directory.reduce((sum, entry) => sum + entry.byteLength, 0);
  const end = header(22, new Uint8Array(0), (view) => {
    view.setUint32(0, 0x06054b50, true);
    view.setUint16(8, directory.length, true);
    view.setUint16(10, directory.length, true);
    view.setUint32(12, size, true);
    view.setUint32(16, offset, true);
  });
  return Buffer.concat([...parts, ...directory, end]);
}

/** The fields local and central headers share, from "version needed" on. */
function common(
  view: DataView,
  at: number,
  fields: { crc: number; compressed: number; declared: number },
  nameLength: number,
): void {
  view.setUint16(at, 20, true); // version needed
  view.setUint16(at + 4, 8, true); // deflated
  view.setUint32(at + 10, fields.crc, true);
  view.setUint32(at + 14, fields.compressed, true);
  view.setUint32(at + 18, fields.declared, true);
  view.setUint16(at + 22, nameLength, true);
}

function header(length: number, name: Uint8Array, write: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(length + name.byteLength);
  write(new DataView(bytes.buffer));
  bytes.set(name, length);
  return bytes;
}

/**
 * Word files made for tests: zip archives whose directory lies about the
 * size of their files (zip bombs that pass a check of the declared sizes),
 * small files that take a lot of memory to read, and files with pictures.
 */
import { crc32, deflateRawSync, deflateSync } from "node:zlib";
import { Document, ImageRun, Packer, Paragraph } from "docx";
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

/**
 * A Word file of a paragraph, a picture of about `bytes` bytes (a PNG of noise, which
 * does not compress) with alternative text, and another paragraph.
 */
export async function withPicture(bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const width = 1024;
  const height = Math.ceil(bytes / (width * 3));
  const picture = new Document({
    sections: [
      {
        children: [
          new Paragraph("Before the picture"),
          new Paragraph({
            children: [
              new ImageRun({
                type: "png",
                data: noisePng(width, height),
                transformation: { width: 512, height: Math.ceil(height / 2) },
                altText: { name: "noise", description: "A square of noise", title: "Noise" },
              }),
            ],
          }),
          new Paragraph("After the picture"),
        ],
      },
    ],
  });
  return new Uint8Array(await Packer.toBuffer(picture));
}

/** A PNG of `width` by `height` random RGB pixels. */
function noisePng(width: number, height: number): Uint8Array {
  const rows = new Uint8Array((width * 3 + 1) * height);
  let seed = 1;
  for (let i = 0; i < rows.length; i++) {
    if (i % (width * 3 + 1) === 0) continue; // filter: none
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    rows[i] = seed >>> 24;
  }
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.byteLength);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.byteLength);
    out.set(strToU8(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.byteLength, crc32(out.subarray(4, 8 + data.byteLength)));
    return out;
  };
  const header = new DataView(new ArrayBuffer(13));
  header.setUint32(0, width);
  header.setUint32(4, height);
  header.setUint8(8, 8); // bits per channel
  header.setUint8(9, 2); // RGB
  return Buffer.concat([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", new Uint8Array(header.buffer)),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

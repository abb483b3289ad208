/**
 * AVI indexes: the same ffmpeg-made file read through its idx1, through an OpenDML indx/ix00 index (rewritten
 * into the file's reserved JUNK space by this test, since ffmpeg writes OpenDML only past 1 GiB), and with no
 * index at all (the movi list is scanned). All three must give the same frames; ix00 keyframe flags must be read.
 */
import { assert, assertEquals } from "./util/assert.ts";
import { mediaDir } from "./util/media_fixtures.ts";
import { decodeVideo, openVideo } from "../src/media/video.ts";

const ascii = (bytes: Uint8Array, at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));

/** Finds chunk `id` by a plain byte search (the test's own reader, independent of the demuxer). */
function find(bytes: Uint8Array, id: string, from = 0): number {
  for (let i = from; i + 4 <= bytes.length; i++) if (ascii(bytes, i) === id) return i;
  return -1;
}

/** Video entries of idx1: data position (after the chunk header) and size. Offsets count from 'movi'. */
function idx1Entries(avi: Uint8Array): { data: number; size: number }[] {
  const view = new DataView(avi.buffer, avi.byteOffset);
  const idx1 = find(avi, "idx1");
  const movi = find(avi, "movi");
  const count = view.getUint32(idx1 + 4, true) / 16;
  const out = [];
  for (let k = 0; k < count; k++) {
    const at = idx1 + 8 + 16 * k;
    if (ascii(avi, at) !== "00dc") continue;
    out.push({ data: movi + view.getUint32(at + 8, true) + 8, size: view.getUint32(at + 12, true) });
  }
  return out;
}

function withoutIdx1(avi: Uint8Array): Uint8Array {
  const out = avi.slice();
  out.set(new TextEncoder().encode("JUNK"), find(out, "idx1"));
  return out;
}

/** The file with idx1 hidden and an OpenDML super index (in strl's JUNK) pointing at an appended ix00. */
function withOpenDml(avi: Uint8Array, nonKey: Set<number>): Uint8Array {
  const entries = idx1Entries(avi);
  const base = withoutIdx1(avi);
  const ixBytes = 8 + 24 + 8 * entries.length;
  const out = new Uint8Array(base.length + ixBytes);
  out.set(base);
  const view = new DataView(out.buffer);
  const text = (at: number, s: string) => out.set(new TextEncoder().encode(s), at);
  const ix = base.length;
  text(ix, "ix00");
  view.setUint32(ix + 4, ixBytes - 8, true);
  view.setUint16(ix + 8, 2, true); // longs per entry
  out[ix + 10] = 0; // sub type
  out[ix + 11] = 1; // AVI_INDEX_OF_CHUNKS
  view.setUint32(ix + 12, entries.length, true);
  text(ix + 16, "00dc");
  view.setBigUint64(ix + 20, 0n, true); // base offset
  entries.forEach((e, k) => {
    view.setUint32(ix + 32 + 8 * k, e.data, true);
    view.setUint32(ix + 36 + 8 * k, e.size | (nonKey.has(k) ? 0x80000000 : 0), true);
  });
  const junk = find(out, "JUNK", find(out, "strf"));
  text(junk, "indx");
  const at = junk + 8;
  view.setUint16(at, 4, true); // longs per entry
  out[at + 2] = 0;
  out[at + 3] = 0; // AVI_INDEX_OF_INDEXES
  view.setUint32(at + 4, 1, true);
  text(at + 8, "00dc");
  view.setBigUint64(at + 24, BigInt(ix), true);
  view.setUint32(at + 32, ixBytes, true);
  view.setUint32(at + 36, entries.length, true);
  return out;
}

Deno.test("AVI: idx1, OpenDML indx/ix00 and an index-free scan give the same frames", async () => {
  const avi = await Deno.readFile(`${await mediaDir()}/mjpeg.avi`);
  const reference = await decodeVideo(avi, { all: true });
  assertEquals(reference.info.frameCount, idx1Entries(avi).length);
  const nonKey = new Set([3, 4, 10]);
  for (const [label, bytes] of [["no index", withoutIdx1(avi)], ["OpenDML", withOpenDml(avi, nonKey)]] as const) {
    const decoded = await decodeVideo(bytes, { all: true });
    assertEquals(decoded.info.frameCount, reference.info.frameCount, label);
    assertEquals([...decoded.info.ptsS], [...reference.info.ptsS], label);
    assert(decoded.data.every((v, i) => v === reference.data[i]), `${label}: frames differ`);
  }
  const video = await openVideo(withOpenDml(avi, nonKey));
  try {
    assertEquals(video.keyframes, reference.indices.filter((i) => !nonKey.has(i)));
  } finally {
    video.close();
  }
});

/** Media inputs made at test time by tests/oracles/make_media.sh, and ffmpeg/ffprobe/Python oracle helpers. */

let generated: Promise<string> | null = null;

/** Runs a command; returns stdout, or throws with stderr. */
export async function run(cmd: string, args: string[], stdin?: string): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const result = await child.output();
  if (!result.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(result.stderr)}`);
  return result.stdout;
}

/** The folder with every generated input (made once per test process). */
export function mediaDir(): Promise<string> {
  if (!generated) {
    generated = (async () => {
      const dir = await Deno.makeTempDir({ prefix: "ppllava-media-" });
      // One folder per test process (~1.5 MB): removed when the process ends, or every run left one in /tmp.
      globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
      await run("bash", ["tests/oracles/make_media.sh", dir]);
      return dir;
    })();
  }
  return generated;
}

export async function mediaFiles(): Promise<string[]> {
  const dir = await mediaDir();
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort().map((name) => `${dir}/${name}`);
}

/** ffprobe's view of the first video stream and its decoded frames (presentation order). */
export async function ffprobe(path: string) {
  const json = JSON.parse(new TextDecoder().decode(
    await run("ffprobe", [
      "-v",
      "error",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=codec_name,width,height,pix_fmt:frame=pts_time,pkt_dts_time,key_frame",
      "-of",
      "json",
      path,
    ]),
  ));
  const stream = json.streams[0];
  const frames = (json.frames ?? []) as { pts_time?: string; pkt_dts_time?: string; key_frame: number }[];
  return {
    codec: stream.codec_name as string,
    width: stream.width as number,
    height: stream.height as number,
    pixFmt: stream.pix_fmt as string,
    ptsS: frames.map((f) => Number(f.pts_time ?? f.pkt_dts_time)),
  };
}

/** ffprobe's packet keyframe flags in presentation order (sorted by pts). */
export async function ffprobeKeyframes(path: string): Promise<number[]> {
  const text = new TextDecoder().decode(
    await run("ffprobe", [
      "-v",
      "error",
      "-select_streams",
      "v:0",
      "-show_entries",
      "packet=pts,flags",
      "-of",
      "csv=p=0",
      path,
    ]),
  );
  const packets = text.trim().split("\n").map((line) => {
    const [pts, flags] = line.split(",");
    return { pts: Number(pts), key: flags.includes("K") };
  });
  packets.sort((a, b) => a.pts - b.pts);
  return packets.flatMap((p, i) => (p.key ? [i] : []));
}

/** ffmpeg's decode of every frame, raw and concatenated. */
export function ffmpegDecode(path: string, pixFmt: string, flags: string[] = []): Promise<Uint8Array> {
  return run("ffmpeg", [
    "-v",
    "error",
    "-i",
    path,
    "-fps_mode",
    "passthrough",
    ...flags,
    "-f",
    "rawvideo",
    "-pix_fmt",
    pixFmt,
    "-",
  ]);
}

/** PSNR in dB of two equal-length byte arrays (Infinity when identical). */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`psnr: ${a.length} vs ${b.length} bytes`);
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    se += d * d;
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / a.length));
}

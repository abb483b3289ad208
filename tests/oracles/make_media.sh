#!/usr/bin/env bash
# Makes the media test inputs with ffmpeg from testsrc2, one file per container × codec pair, into DIR.
#   tests/oracles/make_media.sh DIR
# Odd sizes (97×55), variable frame rate, an edit list and fragments are among them. Deterministic for one ffmpeg.
set -euo pipefail
out=${1:?usage: make_media.sh DIR}
mkdir -p "$out"
# Every output with -fflags +bitexact: no random Matroska UIDs or dates, so the inputs (and fuzz cases) repeat.
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "${@:1:$#-1}" -fflags +bitexact "${@: -1}"; }
src="testsrc2=size=98x56:rate=25:duration=2,format=rgb24,crop=97:55:0:0"
even="testsrc2=size=64x48:rate=25:duration=2"

ff -f lavfi -i "$src" -frames:v 30 -c:v mjpeg -q:v 3 -pix_fmt yuvj420p "$out/mjpeg.mp4"
ff -f lavfi -i "$src" -frames:v 20 -c:v mjpeg -q:v 3 -pix_fmt yuvj422p "$out/mjpeg.mov"
ff -f lavfi -i "$even" -frames:v 24 -c:v mjpeg -q:v 3 -g 5 -movflags frag_keyframe+empty_moov "$out/mjpeg_frag.mp4"
# An edit list: the track starts 0.5 s into the movie (an empty edit), as ffmpeg writes for a positive offset.
ff -f lavfi -i "$src" -frames:v 20 -c:v mjpeg -q:v 3 -output_ts_offset 0.5 "$out/mjpeg_elst.mp4"
# Variable frame rate: timestamps stretch quadratically.
ff -f lavfi -i "$even" -frames:v 20 -vf "setpts=N*N/25/TB" -fps_mode vfr -c:v mjpeg -q:v 3 "$out/mjpeg_vfr.mp4"
ff -f lavfi -i "$src" -frames:v 25 -c:v mjpeg -q:v 3 "$out/mjpeg.mkv"
ff -f lavfi -i "$src" -frames:v 25 -c:v mjpeg -q:v 3 "$out/mjpeg.avi"
ff -f lavfi -i "$src" -frames:v 12 -c:v png "$out/png.mov"
# An audio track before the video track (stream 0 is audio): the demuxers must pick the video by type.
for ext in mov avi mkv; do
  ff -f lavfi -i "sine=frequency=440:duration=1" -f lavfi -i "$src" -map 0:a -map 1:v -frames:v 15 -c:a pcm_s16le \
    -c:v mjpeg -q:v 3 -shortest "$out/audio_first.$ext"
done
ff -f lavfi -i "$src" -frames:v 15 -vf "split[a][b];[a]palettegen=max_colors=64[p];[b][p]paletteuse" "$out/anim.gif"
ff -f lavfi -i "$src" -frames:v 12 -plays 0 -f apng "$out/anim.apng"
# Subsampled Y4M at an even size: for odd sizes swscale stretches the chroma rather than replicating it.
ff -f lavfi -i "$even" -frames:v 10 -pix_fmt yuv420p "$out/yuv420.y4m"
ff -f lavfi -i "$even" -frames:v 10 -pix_fmt yuv422p -strict -1 "$out/yuv422.y4m"
ff -f lavfi -i "$src" -frames:v 10 -pix_fmt yuv444p -strict -1 "$out/yuv444.y4m"
ff -f lavfi -i "$src" -frames:v 6 -pix_fmt yuv444p -color_range pc -strict -1 "$out/yuv444_full.y4m"
ff -f lavfi -i "$src" -frames:v 1 "$out/still.png"
ff -f lavfi -i "$src" -frames:v 1 -q:v 2 "$out/still.jpg"
ff -f lavfi -i "$src" -frames:v 1 "$out/still.gif"
# Other pixel layouts of stills: palette, grey and 16-bit PNG (grey and progressive JPEG come from Pillow below).
ff -f lavfi -i "$src" -frames:v 1 -pix_fmt pal8 "$out/still_pal8.png"
ff -f lavfi -i "$src" -frames:v 1 -pix_fmt gray "$out/still_gray.png"
ff -f lavfi -i "$src" -frames:v 1 -pix_fmt rgb48be "$out/still_rgb48.png"
# Unsupported codecs, for the typed error.
ff -f lavfi -i "$even" -frames:v 10 -c:v libx264 -g 4 -bf 2 -pix_fmt yuv420p "$out/h264.mp4"
ff -f lavfi -i "$even" -frames:v 10 -c:v libx264 -g 4 -pix_fmt yuv420p "$out/h264.mkv"
if ffmpeg -hide_banner -encoders 2>/dev/null | grep libvpx >/dev/null; then
  ff -f lavfi -i "$even" -frames:v 5 -c:v libvpx -b:v 200k "$out/vp8.webm"
fi
# B-frames in fragments: composition offsets in trun.
ff -f lavfi -i "$even" -frames:v 12 -c:v libx264 -g 6 -bf 2 -pix_fmt yuv420p -movflags frag_keyframe+empty_moov "$out/h264_frag.mp4"
# Disposal, transparency, per-frame delays and sub-rectangles, which ffmpeg's own encoders do not write: Pillow
# makes them (GIF disposal 1/2/3 with a transparent index; APNG dispose none/background/previous, blend over).
# Alpha is 0 or 255 only: Pillow's APNG reader (the oracle for APNG disposal) blends partial alpha incorrectly.
/usr/bin/python3 - "$out" <<'PY'
import sys
from PIL import Image, ImageDraw
out = sys.argv[1]
frames = []
for i in range(8):
    im = Image.new("RGBA", (61, 37), (0, 0, 0, 0) if i % 2 else (200, 40, 90, 255))
    d = ImageDraw.Draw(im)
    d.rectangle([3 + 4 * i, 2 + 2 * i, 20 + 4 * i, 14 + 3 * i], fill=(30 * i % 256, 250 - 20 * i, 60, 255))
    d.ellipse([30 - i, 10, 50, 30 - i], fill=(10, 10 + 25 * i, 240, 255))
    frames.append(im)
durations = [40, 100, 70, 20, 150, 60, 30, 90]
frames[0].save(f"{out}/dispose.apng", save_all=True, append_images=frames[1:], duration=durations,
               disposal=[0, 1, 2, 0, 1, 2, 0, 0], blend=[0, 1, 1, 0, 1, 1, 1, 0], loop=0)
gif_frames = [f.convert("RGB").quantize(colors=31) for f in frames]
frames[0].convert("RGB").save(f"{out}/still_progressive.jpg", quality=90, progressive=True)
frames[0].convert("L").save(f"{out}/still_gray.jpg", quality=90)
gif_frames[0].save(f"{out}/dispose.gif", save_all=True, append_images=gif_frames[1:], duration=durations,
                   disposal=[1, 2, 3, 1, 2, 3, 1, 1], transparency=0, loop=0, optimize=False)
PY

#!/usr/bin/env bash
# Makes the media test inputs with ffmpeg from testsrc2, one file per container × codec pair, into DIR.
#   tests/oracles/make_media.sh DIR
# Odd sizes (97×55), variable frame rate, an edit list and fragments are among them. Deterministic for one ffmpeg.
set -euo pipefail
out=${1:?usage: make_media.sh DIR}
mkdir -p "$out"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
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
ff -f lavfi -i "$src" -frames:v 15 -vf "split[a][b];[a]palettegen=max_colors=64[p];[b][p]paletteuse" "$out/anim.gif"
ff -f lavfi -i "$src" -frames:v 12 -plays 0 -f apng "$out/anim.apng"
# Subsampled Y4M at an even size: for odd sizes swscale stretches the chroma rather than replicating it.
ff -f lavfi -i "$even" -frames:v 10 -pix_fmt yuv420p "$out/yuv420.y4m"
ff -f lavfi -i "$even" -frames:v 10 -pix_fmt yuv422p -strict -1 "$out/yuv422.y4m"
ff -f lavfi -i "$src" -frames:v 10 -pix_fmt yuv444p -strict -1 "$out/yuv444.y4m"
ff -f lavfi -i "$src" -frames:v 1 "$out/still.png"
ff -f lavfi -i "$src" -frames:v 1 -q:v 2 "$out/still.jpg"
ff -f lavfi -i "$src" -frames:v 1 "$out/still.gif"
# Unsupported codecs, for the typed error.
ff -f lavfi -i "$even" -frames:v 10 -c:v libx264 -g 4 -bf 2 -pix_fmt yuv420p "$out/h264.mp4"
ff -f lavfi -i "$even" -frames:v 10 -c:v libx264 -g 4 -pix_fmt yuv420p "$out/h264.mkv"
if ffmpeg -hide_banner -encoders 2>/dev/null | grep libvpx >/dev/null; then
  ff -f lavfi -i "$even" -frames:v 5 -c:v libvpx -b:v 200k "$out/vp8.webm"
fi

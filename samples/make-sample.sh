#!/usr/bin/env bash
# Makes samples/red-square.mp4, the bundled sample video: 4 s, 10 fps, 320×240, Motion-JPEG in MP4. A red square
# crosses a grey floor from left to right; a blue square appears, top right, in the second half. Deterministic
# bytes (-bitexact, fixed encoder settings), so re-running it reproduces the committed file.
set -euo pipefail
cd "$(dirname "$0")"
ffmpeg -v error -y -bitexact \
  -f lavfi -i "color=c=0x808080:s=320x240:r=10:d=4" \
  -f lavfi -i "color=c=red:s=60x60:r=10:d=4" \
  -f lavfi -i "color=c=blue:s=50x50:r=10:d=4" \
  -filter_complex "[0][1]overlay=x='20+t*60':y=90[a];[a][2]overlay=x=220:y=30:enable='gte(t,2)',format=yuvj420p" \
  -c:v mjpeg -q:v 3 -fflags +bitexact -flags:v +bitexact -movflags +faststart \
  red-square.mp4
echo "wrote samples/red-square.mp4 ($(stat -c %s red-square.mp4) bytes)"

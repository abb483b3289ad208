/**
 * Float64 reference of the JPEG decoder's last step: libjpeg-style "fancy" (triangle) chroma upsampling of
 * 4:2:0 / 4:2:2 planes, then JFIF full-range BT.601 YCbCr → RGB. Used to turn ffmpeg's own decoded planes
 * (yuvj420p / yuvj422p) into RGB the way libjpeg and jpeg-decoder do, so the test compares decoders, not
 * colour converters (ffmpeg's default swscale conversion upsamples chroma differently).
 */

/** planes: Y (w·h), Cb and Cr (ceil(w/2) · ch) back to back; vertical = true for 4:2:0. Returns RGB24. */
export function fancyYcbcrToRgb(planes: Uint8Array, w: number, h: number, vertical: boolean): Uint8Array {
  const cw = Math.ceil(w / 2);
  const ch = vertical ? Math.ceil(h / 2) : h;
  const cb = planes.subarray(w * h, w * h + cw * ch);
  const cr = planes.subarray(w * h + cw * ch, w * h + 2 * cw * ch);
  const clampX = (x: number) => Math.min(cw - 1, Math.max(0, x));
  const clampY = (y: number) => Math.min(ch - 1, Math.max(0, y));
  // Chroma at luma pixel (x, y): 3/4 nearest sample + 1/4 the next one away, per axis.
  const sample = (plane: Uint8Array, x: number, y: number): number => {
    const nx = x >> 1, fx = clampX(x % 2 === 0 ? nx - 1 : nx + 1);
    const horizontal = (row: number) => (3 * plane[row * cw + nx] + plane[row * cw + fx]) / 4;
    if (!vertical) return horizontal(y);
    const ny = y >> 1, fy = clampY(y % 2 === 0 ? ny - 1 : ny + 1);
    return (3 * horizontal(ny) + horizontal(fy)) / 4;
  };
  const out = new Uint8Array(w * h * 3);
  const clamp = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const Y = planes[y * w + x], b = sample(cb, x, y) - 128, r = sample(cr, x, y) - 128;
      const at = (y * w + x) * 3;
      out[at] = clamp(Y + 1.402 * r);
      out[at + 1] = clamp(Y - 0.344136 * b - 0.714136 * r);
      out[at + 2] = clamp(Y + 1.772 * b);
    }
  }
  return out;
}

;; The f32 linear y = x·Wᵀ + bias (W row-major (n, k), f32) on relaxed SIMD's multiply-add: `f32x4.relaxed_fma` in
;; Binaryen 108's text, which writes its pre-standard opcode; scripts/build-wasm rewrites it to the standard
;; f32x4.relaxed_madd. Every output has one arithmetic, whichever function computes it: lane l of its accumulator sums
;; x[t]·w[t] for t ≡ l (mod 4) in t order by madd, the lanes add as (l0 + l2) + (l1 + l3), the k mod 4 tail adds on in
;; order (f32 mul, add), then + bias (or +0.0). So decoding (f32_matvec, one x row) and prefill (f32_matmul's 4×2
;; tiles) give a row the same bits, as the kernels module's x·Wᵀ paths do. Where the CPU has FMA (x86 with FMA3, Arm)
;; madd rounds once per term instead of twice: not the kernels module's bits, but as close or closer to the float64
;; sum (tests/relaxed_f32.test.ts bounds both against it). Against the kernels module's mul + add, the 4×2 tile with
;; madd and two steps a pass ran 1.4× at M = 64 on Zen 4 (docs/quantization.md, "f32 weights on relaxed SIMD's
;; multiply-add"). f16 and bf16 weights are widened to f32 a block of rows at a time first (widen_f16, widen_bf16).

  ;; bias[j], or +0.0 without a bias.
  (func $bias_at (param $bias i32) (param $j i32) (result f32)
    (if (result f32) (i32.eqz (local.get $bias))
      (then (f32.const 0))
      (else (f32.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))))
  ;; out = ((l0 + l2) + (l1 + l3)) of s, + x[k4 + j]·w[k4 + j] for j in 0..tail in order, + bias: the end of every output.
  ;;   xt, wt: the tail's x and w elements (a packed quad keeps its rows' tails after the groups).
  (func $finish (param $s v128) (param $xt i32) (param $wt i32) (param $tail i32) (param $bias f32) (param $out i32)
    (local $sum f32) (local $j i32)
    (local.set $sum (f32.add (f32.add (f32x4.extract_lane 0 (local.get $s)) (f32x4.extract_lane 2 (local.get $s)))
                             (f32.add (f32x4.extract_lane 1 (local.get $s)) (f32x4.extract_lane 3 (local.get $s)))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $j) (local.get $tail)))
      (local.set $sum (f32.add (local.get $sum)
        (f32.mul (f32.load (i32.add (local.get $xt) (i32.shl (local.get $j) (i32.const 2))))
                 (f32.load (i32.add (local.get $wt) (i32.shl (local.get $j) (i32.const 2)))))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $next)))
    (f32.store (local.get $out) (f32.add (local.get $sum) (local.get $bias))))
  ;; out[j..j + rows) for one x row against `rows` (1 or 8) weight rows from row j (pw its start; row stride 4·k bytes).
  ;; Eight rows share each x load, and their eight madd chains keep up with memory (decoding reads each weight once).
  (func $rows (param $x i32) (param $k i32) (param $pw i32) (param $rows i32) (param $bias i32) (param $j i32) (param $out i32)
    (local $rb i32) (local $k4b i32) (local $o i32) (local $xt i32) (local $tail i32) (local $x4 v128) (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $p4 i32) (local $p5 i32) (local $p6 i32) (local $p7 i32) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $s4 v128) (local $s5 v128) (local $s6 v128) (local $s7 v128)
    (local.set $rb (i32.shl (local.get $k) (i32.const 2)))
    (local.set $k4b (i32.shl (i32.and (local.get $k) (i32.const -4)) (i32.const 2)))
    (local.set $xt (i32.add (local.get $x) (local.get $k4b)))
    (local.set $tail (i32.and (local.get $k) (i32.const 3)))
    (local.set $p0 (local.get $pw))
    (if (i32.eq (local.get $rows) (i32.const 8))
      (then
      (local.set $p1 (i32.add (local.get $pw) (i32.mul (local.get $rb) (i32.const 1))))
      (local.set $p2 (i32.add (local.get $pw) (i32.mul (local.get $rb) (i32.const 2))))
      (local.set $p3 (i32.add (local.get $pw) (i32.mul (local.get $rb) (i32.const 3))))
      (local.set $p4 (i32.add (local.get $pw) (i32.mul (local.get $rb) (i32.const 4))))
      (local.set $p5 (i32.add (local.get $pw) (i32.mul (local.get $rb) (i32.const 5))))
      (local.set $p6 (i32.add (local.get $pw) (i32.mul (local.get $rb) (i32.const 6))))
      (local.set $p7 (i32.add (local.get $pw) (i32.mul (local.get $rb) (i32.const 7))))
        (block $done (loop $next
          (br_if $done (i32.ge_u (local.get $o) (local.get $k4b)))
          (local.set $x4 (v128.load (i32.add (local.get $x) (local.get $o))))
          (local.set $s0 (f32x4.relaxed_fma (local.get $x4) (v128.load (i32.add (local.get $p0) (local.get $o))) (local.get $s0)))
          (local.set $s1 (f32x4.relaxed_fma (local.get $x4) (v128.load (i32.add (local.get $p1) (local.get $o))) (local.get $s1)))
          (local.set $s2 (f32x4.relaxed_fma (local.get $x4) (v128.load (i32.add (local.get $p2) (local.get $o))) (local.get $s2)))
          (local.set $s3 (f32x4.relaxed_fma (local.get $x4) (v128.load (i32.add (local.get $p3) (local.get $o))) (local.get $s3)))
          (local.set $s4 (f32x4.relaxed_fma (local.get $x4) (v128.load (i32.add (local.get $p4) (local.get $o))) (local.get $s4)))
          (local.set $s5 (f32x4.relaxed_fma (local.get $x4) (v128.load (i32.add (local.get $p5) (local.get $o))) (local.get $s5)))
          (local.set $s6 (f32x4.relaxed_fma (local.get $x4) (v128.load (i32.add (local.get $p6) (local.get $o))) (local.get $s6)))
          (local.set $s7 (f32x4.relaxed_fma (local.get $x4) (v128.load (i32.add (local.get $p7) (local.get $o))) (local.get $s7)))
          (local.set $o (i32.add (local.get $o) (i32.const 16)))
          (br $next))))
      (else
        (block $done (loop $next
          (br_if $done (i32.ge_u (local.get $o) (local.get $k4b)))
          (local.set $s0 (f32x4.relaxed_fma (v128.load (i32.add (local.get $x) (local.get $o)))
                                            (v128.load (i32.add (local.get $p0) (local.get $o))) (local.get $s0)))
          (local.set $o (i32.add (local.get $o) (i32.const 16)))
          (br $next)))))
    (call $finish (local.get $s0) (local.get $xt) (i32.add (local.get $p0) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (local.get $j)) (local.get $out))
    (if (i32.eq (local.get $rows) (i32.const 8))
      (then
        (call $finish (local.get $s1) (local.get $xt) (i32.add (local.get $p1) (local.get $k4b)) (local.get $tail)
          (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 1))) (i32.add (local.get $out) (i32.const 4)))
        (call $finish (local.get $s2) (local.get $xt) (i32.add (local.get $p2) (local.get $k4b)) (local.get $tail)
          (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 2))) (i32.add (local.get $out) (i32.const 8)))
        (call $finish (local.get $s3) (local.get $xt) (i32.add (local.get $p3) (local.get $k4b)) (local.get $tail)
          (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 3))) (i32.add (local.get $out) (i32.const 12)))
        (call $finish (local.get $s4) (local.get $xt) (i32.add (local.get $p4) (local.get $k4b)) (local.get $tail)
          (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 4))) (i32.add (local.get $out) (i32.const 16)))
        (call $finish (local.get $s5) (local.get $xt) (i32.add (local.get $p5) (local.get $k4b)) (local.get $tail)
          (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 5))) (i32.add (local.get $out) (i32.const 20)))
        (call $finish (local.get $s6) (local.get $xt) (i32.add (local.get $p6) (local.get $k4b)) (local.get $tail)
          (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 6))) (i32.add (local.get $out) (i32.const 24)))
        (call $finish (local.get $s7) (local.get $xt) (i32.add (local.get $p7) (local.get $k4b)) (local.get $tail)
          (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 7))) (i32.add (local.get $out) (i32.const 28))))))

  ;; out[0..n) = x · Wᵀ + bias for one x row (decoding): weight rows eight at a time, the last n mod 8 one at a time.
  ;;   x: k f32, w: n·k f32, bias: n f32 or 0, out: n f32.
  (func $matvec (export "f32_matvec") (param $x i32) (param $k i32) (param $w i32) (param $n i32) (param $bias i32) (param $out i32)
    (local $j i32) (local $rows i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $rows (select (i32.const 8) (i32.const 1) (i32.le_u (i32.add (local.get $j) (i32.const 8)) (local.get $n))))
      (call $rows (local.get $x) (local.get $k) (i32.add (local.get $w) (i32.mul (local.get $j) (i32.shl (local.get $k) (i32.const 2))))
        (local.get $rows) (local.get $bias) (local.get $j) (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
      (local.set $j (i32.add (local.get $j) (local.get $rows)))
      (br $next))))

  ;; dst[0..count) = the f16 values src[0..count) as f32, exactly: the exponent and mantissa bits moved into f32's
  ;; places read as an f32 times 2¹¹² (the exponent bias difference; exact for normal and subnormal values alike),
  ;; infinities and NaNs given f32's all-ones exponent, then the sign. Eight values a pass, the rest one at a time.
  (func $f16_to_f32 (param $h v128) (result v128)
    (local $em v128)
    (local.set $em (i32x4.shl (v128.and (local.get $h) (i32x4.splat (i32.const 0x7fff))) (i32.const 13)))
    (v128.or
      (i32x4.shl (v128.and (local.get $h) (i32x4.splat (i32.const 0x8000))) (i32.const 16))
      (v128.bitselect
        (v128.or (local.get $em) (i32x4.splat (i32.const 0x7f800000)))
        (f32x4.mul (local.get $em) (f32x4.splat (f32.const 0x1p112)))
        (i32x4.eq (v128.and (local.get $h) (i32x4.splat (i32.const 0x7c00))) (i32x4.splat (i32.const 0x7c00))))))
  (func (export "widen_f16") (param $src i32) (param $count i32) (param $dst i32)
    (local $i i32) (local $v v128)
    (block $done (loop $next
      (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $count)))
      (local.set $v (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))))
      (v128.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (call $f16_to_f32 (i32x4.extend_low_i16x8_u (local.get $v))))
      (v128.store offset=16 (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (call $f16_to_f32 (i32x4.extend_high_i16x8_u (local.get $v))))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br $next)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (f32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (f32x4.extract_lane 0 (call $f16_to_f32 (i32x4.splat (i32.load16_u (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
  ;; dst[0..count) = the bf16 values src[0..count) as f32 (the upper half of an f32's bits: exact).
  (func (export "widen_bf16") (param $src i32) (param $count i32) (param $dst i32)
    (local $i i32) (local $v v128)
    (block $done (loop $next
      (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $count)))
      (local.set $v (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))))
      (v128.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v)) (i32.const 16)))
      (v128.store offset=16 (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v)) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br $next)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (i32.shl (i32.load16_u (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))

  ;; Four x rows (x, row stride 4·k bytes) packed for the tile: group g's four vectors (rows 0..3, elements 4g..4g+3) at
  ;; dst + 64·g, then each row's k mod 4 tail elements, row by row (kernels-rs ops/src/lanes.rs pack_quad's layout).
  (func $pack_quad (param $x i32) (param $k i32) (param $dst i32)
    (local $i i32) (local $o i32) (local $k4b i32) (local $row i32) (local $tail i32) (local $j i32)
    (local.set $k4b (i32.shl (i32.and (local.get $k) (i32.const -4)) (i32.const 2)))
    (local.set $tail (i32.and (local.get $k) (i32.const 3)))
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $i) (i32.const 4)))
      (local.set $row (i32.add (local.get $x) (i32.mul (local.get $i) (i32.shl (local.get $k) (i32.const 2)))))
      (local.set $o (i32.const 0))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $o) (local.get $k4b)))
        (v128.store (i32.add (i32.add (local.get $dst) (i32.shl (local.get $o) (i32.const 2))) (i32.shl (local.get $i) (i32.const 4)))
          (v128.load (i32.add (local.get $row) (local.get $o))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $next)))
      (local.set $j (i32.const 0))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $j) (local.get $tail)))
        (f32.store (i32.add (i32.add (local.get $dst) (i32.shl (local.get $k4b) (i32.const 2)))
                            (i32.shl (i32.add (i32.mul (local.get $i) (local.get $tail)) (local.get $j)) (i32.const 2)))
          (f32.load (i32.add (i32.add (local.get $row) (local.get $k4b)) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $next)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows))))

  ;; The 4×2 register tile: out[i·n + j + r] for the packed quad's rows i in 0..4 and weight rows j, j + 1 (pw0, pw1);
  ;; n is the output's row stride.
  ;; Eight madd chains (four cycles of latency each on Zen 4) keep both FMA pipes busy; two steps of four k values a
  ;; pass halve the loop's own instructions (1.13× one step a pass).
  (func $tile (param $xq i32) (param $k i32) (param $pw0 i32) (param $bias i32) (param $j i32) (param $n i32) (param $out i32)
    (local $pw1 i32) (local $o i32) (local $k4b i32) (local $k8b i32) (local $xt i32) (local $tail i32)
    (local $x v128) (local $w0 v128) (local $w1 v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $s4 v128) (local $s5 v128) (local $s6 v128) (local $s7 v128)
    (local.set $pw1 (i32.add (local.get $pw0) (i32.shl (local.get $k) (i32.const 2))))
    (local.set $k4b (i32.shl (i32.and (local.get $k) (i32.const -4)) (i32.const 2)))
    (local.set $k8b (i32.shl (i32.and (local.get $k) (i32.const -8)) (i32.const 2)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $o) (local.get $k8b)))
        (local.set $w0 (v128.load offset=0 (i32.add (local.get $pw0) (local.get $o))))
        (local.set $w1 (v128.load offset=0 (i32.add (local.get $pw1) (local.get $o))))
        (local.set $x (v128.load offset=0 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s0 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s0)))
        (local.set $s1 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s1)))
        (local.set $x (v128.load offset=16 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s2 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s2)))
        (local.set $s3 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s3)))
        (local.set $x (v128.load offset=32 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s4 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s4)))
        (local.set $s5 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s5)))
        (local.set $x (v128.load offset=48 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s6 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s6)))
        (local.set $s7 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s7)))
        (local.set $w0 (v128.load offset=16 (i32.add (local.get $pw0) (local.get $o))))
        (local.set $w1 (v128.load offset=16 (i32.add (local.get $pw1) (local.get $o))))
        (local.set $x (v128.load offset=64 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s0 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s0)))
        (local.set $s1 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s1)))
        (local.set $x (v128.load offset=80 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s2 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s2)))
        (local.set $s3 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s3)))
        (local.set $x (v128.load offset=96 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s4 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s4)))
        (local.set $s5 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s5)))
        (local.set $x (v128.load offset=112 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s6 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s6)))
        (local.set $s7 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s7)))
      (local.set $o (i32.add (local.get $o) (i32.const 32)))
      (br $next)))
    (if (i32.lt_u (local.get $o) (local.get $k4b))
      (then
        (local.set $w0 (v128.load offset=0 (i32.add (local.get $pw0) (local.get $o))))
        (local.set $w1 (v128.load offset=0 (i32.add (local.get $pw1) (local.get $o))))
        (local.set $x (v128.load offset=0 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s0 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s0)))
        (local.set $s1 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s1)))
        (local.set $x (v128.load offset=16 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s2 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s2)))
        (local.set $s3 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s3)))
        (local.set $x (v128.load offset=32 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s4 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s4)))
        (local.set $s5 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s5)))
        (local.set $x (v128.load offset=48 (i32.add (local.get $xq) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $s6 (f32x4.relaxed_fma (local.get $x) (local.get $w0) (local.get $s6)))
        (local.set $s7 (f32x4.relaxed_fma (local.get $x) (local.get $w1) (local.get $s7)))))
    (local.set $tail (i32.and (local.get $k) (i32.const 3)))
    (local.set $xt (i32.add (local.get $xq) (i32.shl (local.get $k4b) (i32.const 2))))
    (call $finish (local.get $s0) (i32.add (local.get $xt) (i32.mul (i32.const 0) (local.get $tail))) (i32.add (local.get $pw0) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 0)))
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (i32.const 0)) (i32.add (local.get $j) (i32.const 0))) (i32.const 2))))
    (call $finish (local.get $s1) (i32.add (local.get $xt) (i32.mul (i32.const 0) (local.get $tail))) (i32.add (local.get $pw1) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 1)))
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (i32.const 0)) (i32.add (local.get $j) (i32.const 1))) (i32.const 2))))
    (call $finish (local.get $s2) (i32.add (local.get $xt) (i32.mul (i32.const 4) (local.get $tail))) (i32.add (local.get $pw0) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 0)))
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (i32.const 1)) (i32.add (local.get $j) (i32.const 0))) (i32.const 2))))
    (call $finish (local.get $s3) (i32.add (local.get $xt) (i32.mul (i32.const 4) (local.get $tail))) (i32.add (local.get $pw1) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 1)))
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (i32.const 1)) (i32.add (local.get $j) (i32.const 1))) (i32.const 2))))
    (call $finish (local.get $s4) (i32.add (local.get $xt) (i32.mul (i32.const 8) (local.get $tail))) (i32.add (local.get $pw0) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 0)))
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (i32.const 2)) (i32.add (local.get $j) (i32.const 0))) (i32.const 2))))
    (call $finish (local.get $s5) (i32.add (local.get $xt) (i32.mul (i32.const 8) (local.get $tail))) (i32.add (local.get $pw1) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 1)))
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (i32.const 2)) (i32.add (local.get $j) (i32.const 1))) (i32.const 2))))
    (call $finish (local.get $s6) (i32.add (local.get $xt) (i32.mul (i32.const 12) (local.get $tail))) (i32.add (local.get $pw0) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 0)))
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (i32.const 3)) (i32.add (local.get $j) (i32.const 0))) (i32.const 2))))
    (call $finish (local.get $s7) (i32.add (local.get $xt) (i32.mul (i32.const 12) (local.get $tail))) (i32.add (local.get $pw1) (local.get $k4b)) (local.get $tail)
      (call $bias_at (local.get $bias) (i32.add (local.get $j) (i32.const 1)))
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (i32.const 3)) (i32.add (local.get $j) (i32.const 1))) (i32.const 2)))))

  ;; y (m, n; rows out_rs apart) = x (m, k) · Wᵀ + bias. Quads of x rows are packed into `packed` (⌊m/4⌋·4·k f32 of
  ;; scratch) when `pack` ≠ 0, else `packed` already holds them (a caller that converts f16 weights block by block
  ;; packs x once: relaxed.ts); then blocks of 32 weight rows (512 KB at k = 4096: they stay in L2 while every quad
  ;; passes) run as 4×2 tiles; an odd last weight row of a block and the last m mod 4 x rows take $rows, the same
  ;; arithmetic.
  (func (export "f32_matmul") (param $x i32) (param $m i32) (param $k i32) (param $w i32) (param $n i32) (param $bias i32)
    (param $out i32) (param $out_rs i32) (param $packed i32) (param $pack i32)
    (local $quads i32) (local $q i32) (local $jb i32) (local $je i32) (local $j i32) (local $i i32) (local $rb i32) (local $qb i32)
    (local.set $quads (i32.shr_u (local.get $m) (i32.const 2)))
    (local.set $rb (i32.shl (local.get $k) (i32.const 2)))
    (local.set $qb (i32.shl (local.get $k) (i32.const 4)))
    (block $done (loop $next
      (br_if $done (i32.or (i32.eqz (local.get $pack)) (i32.ge_u (local.get $q) (local.get $quads))))
      (call $pack_quad (i32.add (local.get $x) (i32.mul (local.get $q) (local.get $qb))) (local.get $k)
        (i32.add (local.get $packed) (i32.mul (local.get $q) (local.get $qb))))
      (local.set $q (i32.add (local.get $q) (i32.const 1)))
      (br $next)))
    (block $blocks_done (loop $blocks
      (br_if $blocks_done (i32.ge_u (local.get $jb) (local.get $n)))
      (local.set $je (select (local.get $n) (i32.add (local.get $jb) (i32.const 32)) (i32.lt_u (i32.sub (local.get $n) (local.get $jb)) (i32.const 32))))
      (local.set $q (i32.const 0))
      (block $quads_done (loop $quads
        (br_if $quads_done (i32.ge_u (local.get $q) (local.get $quads)))
        (local.set $j (local.get $jb))
        (block $pairs_done (loop $pairs
          (br_if $pairs_done (i32.gt_u (i32.add (local.get $j) (i32.const 2)) (local.get $je)))
          (call $tile (i32.add (local.get $packed) (i32.mul (local.get $q) (local.get $qb))) (local.get $k)
            (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $rb))) (local.get $bias) (local.get $j) (local.get $out_rs)
            (i32.add (local.get $out) (i32.shl (i32.mul (i32.shl (local.get $q) (i32.const 2)) (local.get $out_rs)) (i32.const 2))))
          (local.set $j (i32.add (local.get $j) (i32.const 2)))
          (br $pairs)))
        (if (i32.lt_u (local.get $j) (local.get $je))
          (then
            (local.set $i (i32.shl (local.get $q) (i32.const 2)))
            (block $odd_done (loop $odd
              (br_if $odd_done (i32.ge_u (local.get $i) (i32.add (i32.shl (local.get $q) (i32.const 2)) (i32.const 4))))
              (call $rows (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $rb))) (local.get $k)
                (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $rb))) (i32.const 1) (local.get $bias) (local.get $j)
                (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $out_rs)) (local.get $j)) (i32.const 2))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $odd)))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $quads)))
      (local.set $jb (local.get $je))
      (br $blocks)))
    (local.set $i (i32.shl (local.get $quads) (i32.const 2)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $m)))
      (call $matvec (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $rb))) (local.get $k) (local.get $w) (local.get $n)
        (local.get $bias) (i32.add (local.get $out) (i32.shl (i32.mul (local.get $i) (local.get $out_rs)) (i32.const 2))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))

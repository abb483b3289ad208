;; The q4 products with relaxed SIMD's 8-bit dot (docs/quantization.md, "Products"): one x row (q4_matvec, decoding) or
;; two (q4_matvec2, prefill) against every weight row, one block of four rows a pass, the same arithmetic as kernels-rs
;; dot4_decode::<Q4> (ops/src/quant_simd.rs) so that both give the same bits. Hand-written text because Debian's rustc 1.63 cannot emit relaxed SIMD;
;; scripts/build-wasm assembles it into wasm/ppllava_relaxed.wasm, which imports the kernels module's memory and works on
;; its blocks.
;;
;; Why the bits are the same: a q4 group is 16 bytes, byte j holding element j (low nibble) and element j + 16 (high
;; nibble), stored as q + 8 in 0..15. `i32x4.relaxed_dot_i8x16_i7x16_add_s` (x as int8, codes as the i7 operand: exact on
;; every lowering, as 0..15 never sets the sign bit and no pair sum nears i16's range) puts into lane i the products of
;; elements 4i..4i+3 (low nibbles) and then 16+4i..16+4i+3 (high nibbles), with −2·Σx as the add operand (8·Σx over the
;; four lanes: the −8 offset). The four lanes of each row sum exactly (integers) into the group's dot, lane r of one
;; i32x4 for row r; the float steps (convert, times dw·dx, accumulate from +0.0 group by group, + bias or +0.0) are
;; dot4_decode's, which are the prefill product's and the scalar twin's: every int8 path gives these bits.
;;
;; The high nibbles come from a 16-bit shift and the hoisted mask rather than `i8x16.shr_u`: x86 has no byte shift, so
;; V8 builds i8x16.shr_u from a 16-bit shift and a freshly made mask; this form measured 1.1–1.3× the whole product.
;; Summing each group's four rows into one vector (shuffles) instead of keeping an accumulator per row measured
;; 1.07–1.17× (fewer scale loads and multiplies).
(module
  (import "env" "memory" (memory 1))
  (func (export "abi_version") (result i32) (i32.const 2))
  ;; bias[row..row+4], or +0.0 without a bias (matmul_int8 adds 0.0 then too, which turns −0.0 into +0.0).
  (func $bias (param $bias i32) (param $row i32) (result v128)
    (if (result v128) (i32.eqz (local.get $bias))
      (then (v128.const i32x4 0 0 0 0))
      (else (v128.load (i32.add (local.get $bias) (i32.shl (local.get $row) (i32.const 2)))))))
  ;; out[row] = Σ_g dw[row, g]·dx[g]·(Σ_j x8[g, j]·(c[row, g, j] − 8)) + bias[row] for row in 0..n (n a multiple of 4).
  ;;   x8: g·32 int8 (a group's elements in order), sx: g i32 (Σ of each group's x8), dx: g f32 (x's scales),
  ;;   codes: n·g·16 bytes (the q4 codes plane), dw: n·g f32 (the scales plane), bias: n f32 or 0, out: n f32.
  ;;   Both planes hold the rows in blocks of four with the block's groups interleaved (docs/quantization.md, "Layout"):
  ;;   a block reads as one run of memory, 1.3–1.6× the bandwidth of four rows 2 KB apart.
  (func (export "q4_matvec") (param $x8 i32) (param $sx i32) (param $dx i32) (param $codes i32) (param $dw i32)
    (param $n i32) (param $g i32) (param $bias i32) (param $out i32)
    (local $row i32) (local $k i32) (local $rowCodes i32) (local $rowScales i32) (local $block i32)
    (local $blockScales i32) (local $c0 i32) (local $c1 i32) (local $c2 i32) (local $c3 i32)
    (local $mask v128) (local $xlo v128) (local $xhi v128) (local $off v128) (local $d v128) (local $v v128)
    (local $s v128) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $u01 v128)
    (local $u23 v128) (local $acc v128)
    (local.set $mask (i8x16.splat (i32.const 15)))
    (local.set $rowCodes (i32.shl (local.get $g) (i32.const 4)))
    (local.set $rowScales (i32.shl (local.get $g) (i32.const 2)))
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $row) (local.get $n)))
      ;; Rows row..row+3 are one block: group k of row r at block + k·64 + r·16, its scale at blockScales + k·16 + r·4.
      (local.set $block (i32.add (local.get $codes) (i32.mul (local.get $row) (local.get $rowCodes))))
      (local.set $blockScales (i32.add (local.get $dw) (i32.mul (local.get $row) (local.get $rowScales))))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $c0 (i32.add (local.get $block) (i32.const 0)))
      (local.set $c1 (i32.add (local.get $block) (i32.const 16)))
      (local.set $c2 (i32.add (local.get $block) (i32.const 32)))
      (local.set $c3 (i32.add (local.get $block) (i32.const 48)))
      (local.set $k (i32.const 0))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $k) (local.get $g)))
        (local.set $xlo (v128.load (i32.add (local.get $x8) (i32.shl (local.get $k) (i32.const 5)))))
        (local.set $xhi (v128.load offset=16 (i32.add (local.get $x8) (i32.shl (local.get $k) (i32.const 5)))))
        (local.set $off (i32x4.splat (i32.mul (i32.const -2) (i32.load (i32.add (local.get $sx) (i32.shl (local.get $k) (i32.const 2)))))))
        (local.set $d (v128.load32_splat (i32.add (local.get $dx) (i32.shl (local.get $k) (i32.const 2)))))
        (local.set $v (v128.load (i32.add (local.get $c0) (i32.shl (local.get $k) (i32.const 6)))))
        (local.set $s (i32x4.dot_i8x16_i7x16_add_s (local.get $xlo) (v128.and (local.get $v) (local.get $mask)) (local.get $off)))
        (local.set $s0 (i32x4.dot_i8x16_i7x16_add_s (local.get $xhi) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)) (local.get $s)))
        (local.set $v (v128.load (i32.add (local.get $c1) (i32.shl (local.get $k) (i32.const 6)))))
        (local.set $s (i32x4.dot_i8x16_i7x16_add_s (local.get $xlo) (v128.and (local.get $v) (local.get $mask)) (local.get $off)))
        (local.set $s1 (i32x4.dot_i8x16_i7x16_add_s (local.get $xhi) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)) (local.get $s)))
        (local.set $v (v128.load (i32.add (local.get $c2) (i32.shl (local.get $k) (i32.const 6)))))
        (local.set $s (i32x4.dot_i8x16_i7x16_add_s (local.get $xlo) (v128.and (local.get $v) (local.get $mask)) (local.get $off)))
        (local.set $s2 (i32x4.dot_i8x16_i7x16_add_s (local.get $xhi) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)) (local.get $s)))
        (local.set $v (v128.load (i32.add (local.get $c3) (i32.shl (local.get $k) (i32.const 6)))))
        (local.set $s (i32x4.dot_i8x16_i7x16_add_s (local.get $xlo) (v128.and (local.get $v) (local.get $mask)) (local.get $off)))
        (local.set $s3 (i32x4.dot_i8x16_i7x16_add_s (local.get $xhi) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)) (local.get $s)))
        ;; [Σ lanes of s0, …, Σ lanes of s3] (quant_simd.rs `reduce4`), times the block's four scales times d_x.
        (local.set $u01 (i32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $s0) (local.get $s1))
                                   (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $s0) (local.get $s1))))
        (local.set $u23 (i32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $s2) (local.get $s3))
                                   (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $s2) (local.get $s3))))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
          (f32x4.convert_i32x4_s (i32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u01) (local.get $u23))
                                            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u01) (local.get $u23))))
          (f32x4.mul (v128.load (i32.add (local.get $blockScales) (i32.shl (local.get $k) (i32.const 4)))) (local.get $d)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next)))
      (v128.store (i32.add (local.get $out) (i32.shl (local.get $row) (i32.const 2)))
        (f32x4.add (local.get $acc) (call $bias (local.get $bias) (local.get $row))))
      (local.set $row (i32.add (local.get $row) (i32.const 4)))
      (br $rows))))
;; q4_matvec for two x rows at once (prefill): out_a and out_b as q4_matvec would write them, the same bits. Each
;; block's codes are loaded and split into nibbles once for both rows: 1.13–1.16× two q4_matvec calls at M = 64.
  (func (export "q4_matvec2") (param $x8a i32) (param $sxa i32) (param $dxa i32) (param $x8b i32) (param $sxb i32) (param $dxb i32) (param $codes i32) (param $dw i32)
    (param $n i32) (param $g i32) (param $bias i32) (param $outa i32) (param $outb i32)
    (local $row i32) (local $k i32) (local $block i32) (local $blockScales i32)
    (local $c0 i32) (local $c1 i32) (local $c2 i32) (local $c3 i32)
    (local $mask v128) (local $v v128) (local $lo v128) (local $hi v128) (local $w4 v128) (local $u01 v128) (local $u23 v128)
    (local $xalo v128) (local $xahi v128) (local $offa v128) (local $da v128) (local $acca v128) (local $sa0 v128) (local $sa1 v128) (local $sa2 v128) (local $sa3 v128)
    (local $xblo v128) (local $xbhi v128) (local $offb v128) (local $db v128) (local $accb v128) (local $sb0 v128) (local $sb1 v128) (local $sb2 v128) (local $sb3 v128)
    (local.set $mask (i8x16.splat (i32.const 15)))
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $row) (local.get $n)))
      (local.set $block (i32.add (local.get $codes) (i32.mul (local.get $row) (i32.shl (local.get $g) (i32.const 4)))))
      (local.set $blockScales (i32.add (local.get $dw) (i32.mul (local.get $row) (i32.shl (local.get $g) (i32.const 2)))))
      (local.set $acca (v128.const i32x4 0 0 0 0))
      (local.set $accb (v128.const i32x4 0 0 0 0))
      (local.set $c0 (local.get $block))
      (local.set $c1 (i32.add (local.get $block) (i32.const 16)))
      (local.set $c2 (i32.add (local.get $block) (i32.const 32)))
      (local.set $c3 (i32.add (local.get $block) (i32.const 48)))
      (local.set $k (i32.const 0))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $k) (local.get $g)))
        (local.set $xalo (v128.load (i32.add (local.get $x8a) (i32.shl (local.get $k) (i32.const 5)))))
        (local.set $xahi (v128.load offset=16 (i32.add (local.get $x8a) (i32.shl (local.get $k) (i32.const 5)))))
        (local.set $offa (i32x4.splat (i32.mul (i32.const -2) (i32.load (i32.add (local.get $sxa) (i32.shl (local.get $k) (i32.const 2)))))))
        (local.set $da (v128.load32_splat (i32.add (local.get $dxa) (i32.shl (local.get $k) (i32.const 2)))))
        (local.set $xblo (v128.load (i32.add (local.get $x8b) (i32.shl (local.get $k) (i32.const 5)))))
        (local.set $xbhi (v128.load offset=16 (i32.add (local.get $x8b) (i32.shl (local.get $k) (i32.const 5)))))
        (local.set $offb (i32x4.splat (i32.mul (i32.const -2) (i32.load (i32.add (local.get $sxb) (i32.shl (local.get $k) (i32.const 2)))))))
        (local.set $db (v128.load32_splat (i32.add (local.get $dxb) (i32.shl (local.get $k) (i32.const 2)))))
        (local.set $v (v128.load (i32.add (local.get $c0) (i32.shl (local.get $k) (i32.const 6)))))
        (local.set $lo (v128.and (local.get $v) (local.get $mask)))
        (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)))
        (local.set $sa0 (i32x4.dot_i8x16_i7x16_add_s (local.get $xahi) (local.get $hi) (i32x4.dot_i8x16_i7x16_add_s (local.get $xalo) (local.get $lo) (local.get $offa))))
        (local.set $sb0 (i32x4.dot_i8x16_i7x16_add_s (local.get $xbhi) (local.get $hi) (i32x4.dot_i8x16_i7x16_add_s (local.get $xblo) (local.get $lo) (local.get $offb))))
        (local.set $v (v128.load (i32.add (local.get $c1) (i32.shl (local.get $k) (i32.const 6)))))
        (local.set $lo (v128.and (local.get $v) (local.get $mask)))
        (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)))
        (local.set $sa1 (i32x4.dot_i8x16_i7x16_add_s (local.get $xahi) (local.get $hi) (i32x4.dot_i8x16_i7x16_add_s (local.get $xalo) (local.get $lo) (local.get $offa))))
        (local.set $sb1 (i32x4.dot_i8x16_i7x16_add_s (local.get $xbhi) (local.get $hi) (i32x4.dot_i8x16_i7x16_add_s (local.get $xblo) (local.get $lo) (local.get $offb))))
        (local.set $v (v128.load (i32.add (local.get $c2) (i32.shl (local.get $k) (i32.const 6)))))
        (local.set $lo (v128.and (local.get $v) (local.get $mask)))
        (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)))
        (local.set $sa2 (i32x4.dot_i8x16_i7x16_add_s (local.get $xahi) (local.get $hi) (i32x4.dot_i8x16_i7x16_add_s (local.get $xalo) (local.get $lo) (local.get $offa))))
        (local.set $sb2 (i32x4.dot_i8x16_i7x16_add_s (local.get $xbhi) (local.get $hi) (i32x4.dot_i8x16_i7x16_add_s (local.get $xblo) (local.get $lo) (local.get $offb))))
        (local.set $v (v128.load (i32.add (local.get $c3) (i32.shl (local.get $k) (i32.const 6)))))
        (local.set $lo (v128.and (local.get $v) (local.get $mask)))
        (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)))
        (local.set $sa3 (i32x4.dot_i8x16_i7x16_add_s (local.get $xahi) (local.get $hi) (i32x4.dot_i8x16_i7x16_add_s (local.get $xalo) (local.get $lo) (local.get $offa))))
        (local.set $sb3 (i32x4.dot_i8x16_i7x16_add_s (local.get $xbhi) (local.get $hi) (i32x4.dot_i8x16_i7x16_add_s (local.get $xblo) (local.get $lo) (local.get $offb))))
        (local.set $w4 (v128.load (i32.add (local.get $blockScales) (i32.shl (local.get $k) (i32.const 4)))))
        (local.set $u01 (i32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $sa0) (local.get $sa1))
                                   (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $sa0) (local.get $sa1))))
        (local.set $u23 (i32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $sa2) (local.get $sa3))
                                   (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $sa2) (local.get $sa3))))
        (local.set $acca (f32x4.add (local.get $acca) (f32x4.mul
          (f32x4.convert_i32x4_s (i32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u01) (local.get $u23))
                                            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u01) (local.get $u23))))
          (f32x4.mul (local.get $w4) (local.get $da)))))
        (local.set $u01 (i32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $sb0) (local.get $sb1))
                                   (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $sb0) (local.get $sb1))))
        (local.set $u23 (i32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $sb2) (local.get $sb3))
                                   (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $sb2) (local.get $sb3))))
        (local.set $accb (f32x4.add (local.get $accb) (f32x4.mul
          (f32x4.convert_i32x4_s (i32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u01) (local.get $u23))
                                            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u01) (local.get $u23))))
          (f32x4.mul (local.get $w4) (local.get $db)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next)))
      (v128.store (i32.add (local.get $outa) (i32.shl (local.get $row) (i32.const 2)))
        (f32x4.add (local.get $acca) (call $bias (local.get $bias) (local.get $row))))
      (v128.store (i32.add (local.get $outb) (i32.shl (local.get $row) (i32.const 2)))
        (f32x4.add (local.get $accb) (call $bias (local.get $bias) (local.get $row))))
      (local.set $row (i32.add (local.get $row) (i32.const 4)))
      (br $rows))))
)

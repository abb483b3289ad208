;; Experiment (issue 6, not used by the runtime): the q4 group dot of decode written with relaxed SIMD's
;; i32x4.relaxed_dot_i8x16_i7x16_add_s next to the SIMD128 form that kernels-rs uses (quant_simd.rs: codes − 8 widened to
;; i16, i32x4.dot_i16x8_s). rustc 1.63 cannot emit relaxed SIMD, so this is hand-written text; bench/relaxed_simd.ts
;; assembles it with binaryen's wasm-as and times both. The i7 operand is the unsigned 4-bit code (0..15, exact on every
;; lowering); the −8 offset comes back as −8·Σx per group, which the add operand carries for free.
(module
  (memory (export "memory") 256)
  ;; q4 group dot, relaxed: codes (16 B per group of 32), x8 (32 i8 per group), sx (i32 per group: Σx), dw (f32 per group)
  (func (export "relaxed") (param $codes i32) (param $x i32) (param $sx i32) (param $dw i32) (param $g i32) (result f32)
    (local $acc v128) (local $v v128) (local $i v128) (local $k i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $g)))
      (local.set $v (v128.load (i32.add (local.get $codes) (i32.shl (local.get $k) (i32.const 4)))))
      (local.set $i (i32x4.replace_lane 0 (v128.const i32x4 0 0 0 0)
        (i32.mul (i32.const -8) (i32.load (i32.add (local.get $sx) (i32.shl (local.get $k) (i32.const 2)))))))
      (local.set $i (i32x4.dot_i8x16_i7x16_add_s
        (v128.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 5))))
        (v128.and (local.get $v) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
        (local.get $i)))
      (local.set $i (i32x4.dot_i8x16_i7x16_add_s
        (v128.load offset=16 (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 5))))
        (i8x16.shr_u (local.get $v) (i32.const 4))
        (local.get $i)))
      (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (f32x4.convert_i32x4_s (local.get $i))
        (f32x4.splat (f32.load (i32.add (local.get $dw) (i32.shl (local.get $k) (i32.const 2))))))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next)))
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 2 (local.get $acc)))
             (f32.add (f32x4.extract_lane 1 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
  ;; the SIMD128 form of kernels-rs (quant_simd.rs dot_int8_impl::<Q4>): codes −8 widened to i16, i32x4.dot_i16x8 with x16
  (func (export "classic") (param $codes i32) (param $x i32) (param $dw i32) (param $g i32) (result f32)
    (local $acc v128) (local $v v128) (local $lo v128) (local $hi v128) (local $s v128) (local $xp i32) (local $k i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $g)))
      (local.set $v (v128.load (i32.add (local.get $codes) (i32.shl (local.get $k) (i32.const 4)))))
      (local.set $lo (i8x16.sub (v128.and (local.get $v) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)) (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8)))
      (local.set $hi (i8x16.sub (i8x16.shr_u (local.get $v) (i32.const 4)) (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8)))
      (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 6))))
      (local.set $s (i32x4.add
        (i32x4.add (i32x4.dot_i16x8_s (v128.load (local.get $xp)) (i16x8.extend_low_i8x16_s (local.get $lo)))
                   (i32x4.dot_i16x8_s (v128.load offset=16 (local.get $xp)) (i16x8.extend_high_i8x16_s (local.get $lo))))
        (i32x4.add (i32x4.dot_i16x8_s (v128.load offset=32 (local.get $xp)) (i16x8.extend_low_i8x16_s (local.get $hi)))
                   (i32x4.dot_i16x8_s (v128.load offset=48 (local.get $xp)) (i16x8.extend_high_i8x16_s (local.get $hi))))))
      (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (f32x4.convert_i32x4_s (local.get $s))
        (f32x4.splat (f32.load (i32.add (local.get $dw) (i32.shl (local.get $k) (i32.const 2))))))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next)))
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 2 (local.get $acc)))
             (f32.add (f32x4.extract_lane 1 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc))))))

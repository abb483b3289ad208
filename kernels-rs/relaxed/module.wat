;; wasm/ppllava_relaxed.wasm: the products that need relaxed SIMD, in hand-written text because Debian's rustc 1.63
;; cannot emit relaxed SIMD. It imports the kernels module's memory and works on the tensors in place; which of its
;; products a backend uses is decided at load (src/backend/wasm/relaxed.ts).
;;
;; One module in four files: this header (the module's opening, its memory import and ABI version), then the fields of
;; quant.wat (the q4 and q8 products on relaxed SIMD's 8-bit dots), f32.wat (the f32 linear on relaxed multiply-add;
;; f16/bf16 weights widened first) and attention.wat (attention on the same), in that order, then the module's closing
;; parenthesis: scripts/build-wasm joins them so and assembles the result.
(module
  (import "env" "memory" (memory 1))
  (func (export "abi_version") (result i32) (i32.const 5))

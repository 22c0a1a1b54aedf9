// simd_isa.h: what the per-instruction-set sources (simd_*.cpp) share: the native vector type `vf`
// and its operations, the epilogue applied to a finished sum, and the declarations of the kernels
// each family file defines for the table (simd_table.cpp, simd.h's KernelTable).
//
// included only by those sources. each of them is compiled once per instruction set (PYREG_ISA =
// generic | avx2 | avx512, CMakeLists.txt's foreach over PYREG_ISAS) into the namespace
// pyreg::PYREG_ISA, so the same names never meet across instruction sets; dispatch.cpp picks a table.
//
// rounding: these sources are compiled with -ffp-contract=off, so a*b+c is never fused behind our
// back; the kernels fuse explicitly (vfma) where keras' float32 sequence allows it (see each file).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "simd.h"

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#ifndef PYREG_ISA
#error "PYREG_ISA must name the instruction set this object is compiled for"
#endif

namespace pyreg {
namespace PYREG_ISA {
namespace {

// the native vector: width, load/store (full and first-n), broadcast, fused multiply-add, relu.

#if defined(__AVX512F__)
constexpr int VW = 16;
constexpr int MR = 4, NV = 4;  // 4 x 64 register tile: 16 accumulators + 4 loads of 32 zmm
typedef float vf __attribute__((vector_size(64)));
inline vf vload(const float* p) { return (vf)_mm512_loadu_ps(p); }
inline vf vloadn(const float* p, int n) { return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, (__m512)v); }
inline void vstoren(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v); }
inline vf vset1(float s) { return (vf)_mm512_set1_ps(s); }
inline vf vfma(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
#elif defined(__AVX2__)
constexpr int VW = 8;
constexpr int MR = 6, NV = 2;  // 6 x 16 register tile: 12 accumulators of 16 ymm
typedef float vf __attribute__((vector_size(32)));
inline __m256i tail_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline vf vload(const float* p) { return (vf)_mm256_loadu_ps(p); }
inline vf vloadn(const float* p, int n) { return (vf)_mm256_maskload_ps(p, tail_mask(n)); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, (__m256)v); }
inline void vstoren(float* p, vf v, int n) { _mm256_maskstore_ps(p, tail_mask(n), (__m256)v); }
inline vf vset1(float s) { return (vf)_mm256_set1_ps(s); }
inline vf vfma(vf a, vf b, vf c) { return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c); }
#else
constexpr int VW = 4;
constexpr int MR = 4, NV = 2;  // 4 x 8: 8 accumulators, fits 16 sse or 32 neon registers
typedef float vf __attribute__((vector_size(16)));
inline vf vload(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline vf vloadn(const float* p, int n) { vf v = {}; std::memcpy(&v, p, sizeof(float) * (size_t)n); return v; }
inline void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline void vstoren(float* p, vf v, int n) { std::memcpy(p, &v, sizeof(float) * (size_t)n); }
inline vf vset1(float s) { return vf{s, s, s, s}; }
// no fused multiply-add in the portable path: one rounding after the product, one after the sum.
inline vf vfma(vf a, vf b, vf c) { return a * b + c; }
#endif
// relu as max(a, 0); NaN gives 0, as the max instructions do.
inline vf vrelu(vf a) { const vf z = {}; return a > z ? a : z; }

// a whole vector (cnt == VW) or its first cnt lanes.
inline vf ld(const float* p, int cnt) { return cnt == VW ? vload(p) : vloadn(p, cnt); }
inline void st(float* p, vf v, int cnt) {
    if (cnt == VW) vstore(p, v);
    else vstoren(p, v, cnt);
}

// the optimizers' element-wise operations.
#if defined(__AVX512F__)
inline vf vsqrt(vf a) { return (vf)_mm512_sqrt_ps((__m512)a); }
#elif defined(__AVX2__)
inline vf vsqrt(vf a) { return (vf)_mm256_sqrt_ps((__m256)a); }
#elif defined(__SSE2__)
inline vf vsqrt(vf a) { return (vf)_mm_sqrt_ps((__m128)a); }
#else
inline vf vsqrt(vf a) { for (int l = 0; l < VW; ++l) a[l] = std::sqrt(a[l]); return a; }
#endif
inline vf vsign(vf a) {
    const vf z = {}, one = vset1(1.0f);
    return (a > z ? one : z) - (a < z ? one : z);
}
inline vf vabs(vf a) { const vf z = {}; return a < z ? z - a : a; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }

// what a kernel does with a finished sum before storing it: one meaning wherever it is used.
enum class Epilogue {
    none,        // store the sum (a partial sum that later chunks continue)
    bias,        // store sum + bias (+ 0 when there is no bias)
    bias_relu,   // store relu(sum + bias)
    accumulate,  // add the sum to what is stored
};
}  // namespace

// the kernels of the KernelTable (simd.h documents each), one family per file.
// simd_gemm.cpp: register-tiled matrix products.
void gemm_nn(size_t m, size_t n, size_t k, const float* const* arows, const uint32_t* kidx, const float* b,
             size_t ldb, const float* bias, Act act, bool accumulate, float* c, size_t ldc);
void gemm_tn(size_t m, size_t n, size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx,
             const float* b, size_t ldb, bool accumulate, float* c, size_t ldc);
// simd_act.cpp: activation (and dropout mask) backward.
void act_backward(size_t rows, size_t c0, size_t c1, size_t ldm, float* dz, const float* dy, const float* y,
                  const uint8_t* mask, float scale, Act act);
// simd_scan.cpp: non-zero bitmaps of rows and columns, the NaN/Inf scan.
bool nonzero_bits(const float* x, size_t k, uint64_t* bits);
bool any_nonfinite(const float* x, size_t n);
void column_bits(const uint64_t* row_bits, size_t B, size_t words, size_t w0, size_t w1, size_t IN, uint64_t* cols);
// simd_optim.cpp: the optimizers' fused passes.
void adam(size_t rows, size_t cols, size_t ldw, float* w, const float* g, float* m, float* v, float* vhat,
          const OptCoef& c, double* sum_sq, double* sum_abs);
void sgd(size_t rows, size_t cols, size_t ldw, float* w, const float* g, float* mom, const OptCoef& c,
         double* sum_sq, double* sum_abs);
// simd_dropout.cpp: the dropout mask from philox words.
void dropout_forward(size_t rows, size_t width, size_t c0, size_t c1, float* x, uint8_t* mask, uint64_t seed,
                     uint32_t stream, uint64_t step, uint64_t keep_threshold, float scale);
// simd_sweep.cpp: the first layer's sweep (sweep.h).
void sparse_weight_grad(size_t p0, size_t p1, size_t width, const uint64_t* cols, size_t bw, const float* const* xrows,
                        const float* dz, size_t ldz, float* g, size_t ldg);
void sparse_grad_adam(size_t p0, size_t p1, const uint64_t* cols, size_t bw, const float* const* xrows,
                      const float* dz, size_t ldz, float* w, float* m, float* v, float* vhat, size_t second,
                      const OptCoef& c, double* sum_sq, double* sum_abs);
void sparse_forward_chunk(size_t rows, size_t width, size_t p0, size_t p1, const uint64_t* bits, size_t words,
                          const float* const* xrows, const float* w, size_t ldw, const float* bias, Act act,
                          bool first, bool last, float* y, size_t ldy);

}  // namespace PYREG_ISA
}  // namespace pyreg

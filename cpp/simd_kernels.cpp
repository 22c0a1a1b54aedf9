// simd_kernels.cpp: the hot kernels of simd.h, written once over a native vector type `vf` and
// compiled once per instruction set (PYREG_ISA = generic | avx2 | avx512, see CMakeLists.txt).
//
// rounding: this file is compiled with -ffp-contract=off, so a*b+c is never fused behind our
// back; the gemm kernels fuse explicitly (vfma), the optimizer does exactly keras' sequence of
// float32 operations (its penalty sums, which only report the loss, use vfma too). every output
// element of a gemm is one sequential sum over p = 0..k-1, so tiling and threading never change a
// result.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "rng.h"
#include "simd.h"

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#ifndef PYREG_ISA
#error "PYREG_ISA must name the instruction set this object is compiled for"
#endif
#define PYREG_STR2(x) #x
#define PYREG_STR(x) PYREG_STR2(x)

namespace pyreg {
namespace PYREG_ISA {
namespace {

// ---------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------
// gemm register tile: acc (R, V vectors) = sum over p of A(r, p) * B(p, :); the last vector holds
// only `nlast` columns when PART. TA selects how A is read (see simd.h: gemm_nn vs gemm_tn).

template <int R, int V, bool TA, bool PART>
inline void tile_sum(size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx, const float* b,
                     size_t ldb, int nlast, vf (&out)[R][V]) {
    // a local tile, copied out at the end: accumulating straight into `out` made gcc store the whole
    // tile to the stack on every step (it may alias the float loads below): 2.4x slower on 10 columns.
    vf acc[R][V];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) acc[r][v] = vf{};
    const float* ar[R];
    if (!TA)
        for (int r = 0; r < R; ++r) ar[r] = arows[r];
    constexpr size_t PD = 6;  // with an index list the rows are not sequential: prefetch a few ahead
    for (size_t q = 0; q < k; ++q) {
        const size_t p = kidx ? kidx[q] : q;
        if (kidx && q + PD < k) {
            const size_t pn = kidx[q + PD];
            if (TA) {
                __builtin_prefetch(arows[pn] + a_off);
            } else {
                for (int v = 0; v < V; ++v) __builtin_prefetch(b + pn * ldb + v * VW);
            }
        }
        const float* bp = b + p * ldb;
        vf bv[V];
        for (int v = 0; v < V; ++v) bv[v] = (PART && v == V - 1) ? vloadn(bp + v * VW, nlast) : vload(bp + v * VW);
        const float* ap = TA ? arows[p] + a_off : nullptr;
        for (int r = 0; r < R; ++r) {
            const vf a = vset1(TA ? ap[r] : ar[r][p]);
            for (int v = 0; v < V; ++v) acc[r][v] = vfma(a, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) out[r][v] = acc[r][v];
}

// mode 0: c = acc + bias; mode 1: c = relu(acc + bias); mode 2: c += acc.
template <int R, int V, bool PART>
inline void tile_store(const vf (&acc)[R][V], const float* bias, int mode, float* c, size_t ldc, int nlast) {
    vf bv[V];
    for (int v = 0; v < V; ++v) {
        if (mode == 2 || bias == nullptr) bv[v] = vf{};
        else bv[v] = (PART && v == V - 1) ? vloadn(bias + v * VW, nlast) : vload(bias + v * VW);
    }
    for (int r = 0; r < R; ++r) {
        float* cr = c + (size_t)r * ldc;
        for (int v = 0; v < V; ++v) {
            const bool part = PART && v == V - 1;
            vf out = acc[r][v] + bv[v];
            if (mode == 1) out = vrelu(out);
            if (mode == 2) out = (part ? vloadn(cr + v * VW, nlast) : vload(cr + v * VW)) + acc[r][v];
            if (part) vstoren(cr + v * VW, out, nlast);
            else vstore(cr + v * VW, out);
        }
    }
}

template <int R, int V, bool TA, bool PART>
inline void tile(size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx, const float* b, size_t ldb,
                 const float* bias, int mode, float* c, size_t ldc, int nlast) {
    vf acc[R][V];
    tile_sum<R, V, TA, PART>(k, arows, a_off, kidx, b, ldb, nlast, acc);
    tile_store<R, V, PART>(acc, bias, mode, c, ldc, nlast);
}

// one row block of R rows across all n columns: full tiles of NV vectors, then the column tail.
template <int R, bool TA>
void row_block(size_t n, size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx, const float* b,
               size_t ldb, const float* bias, int mode, float* c, size_t ldc) {
    constexpr size_t NR = (size_t)NV * VW;
    size_t j = 0;
    for (; j + NR <= n; j += NR)
        tile<R, NV, TA, false>(k, arows, a_off, kidx, b + j, ldb, bias ? bias + j : nullptr, mode, c + j, ldc, VW);
    const size_t rem = n - j;
    if (rem == 0) return;
    const int nvec = (int)((rem + VW - 1) / VW);
    const int nlast = (int)(rem - (size_t)(nvec - 1) * VW);
    const float* bj = bias ? bias + j : nullptr;
    switch (nvec) {  // 1 <= nvec <= NV <= 4 on every isa
        case 1: tile<R, 1, TA, true>(k, arows, a_off, kidx, b + j, ldb, bj, mode, c + j, ldc, nlast); break;
        case 2: if constexpr (NV >= 2) tile<R, 2, TA, true>(k, arows, a_off, kidx, b + j, ldb, bj, mode, c + j, ldc, nlast); break;
        case 3: if constexpr (NV >= 3) tile<R, 3, TA, true>(k, arows, a_off, kidx, b + j, ldb, bj, mode, c + j, ldc, nlast); break;
        case 4: if constexpr (NV >= 4) tile<R, 4, TA, true>(k, arows, a_off, kidx, b + j, ldb, bj, mode, c + j, ldc, nlast); break;
        default: break;
    }
}

template <bool TA>
void gemm_rows(size_t m, size_t n, size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx,
               const float* b, size_t ldb, const float* bias, int mode, float* c, size_t ldc) {
    size_t i = 0;
    // NN: rows of C are rows of A (arows advances); TN: rows of C are columns of A (a_off advances).
    auto rows_at = [&](size_t i0) { return TA ? arows : arows + i0; };
    auto off_at = [&](size_t i0) { return TA ? a_off + i0 : (size_t)0; };
    for (; i + MR <= m; i += MR) row_block<MR, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, mode, c + i * ldc, ldc);
    switch (m - i) {
        case 0: break;
        case 1: row_block<1, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, mode, c + i * ldc, ldc); break;
        case 2: if constexpr (MR > 2) row_block<2, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, mode, c + i * ldc, ldc); break;
        case 3: if constexpr (MR > 3) row_block<3, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, mode, c + i * ldc, ldc); break;
        case 4: if constexpr (MR > 4) row_block<4, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, mode, c + i * ldc, ldc); break;
        case 5: if constexpr (MR > 5) row_block<5, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, mode, c + i * ldc, ldc); break;
        default: break;
    }
}

void gemm_nn(size_t m, size_t n, size_t k, const float* const* arows, const uint32_t* kidx, const float* b,
             size_t ldb, const float* bias, Act act, bool accumulate, float* c, size_t ldc) {
    const int mode = accumulate ? 2 : (act == Act::relu ? 1 : 0);
    gemm_rows<false>(m, n, k, arows, 0, kidx, b, ldb, accumulate ? nullptr : bias, mode, c, ldc);
}

void gemm_tn(size_t m, size_t n, size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx,
             const float* b, size_t ldb, bool accumulate, float* c, size_t ldc) {
    gemm_rows<true>(m, n, k, arows, a_off, kidx, b, ldb, nullptr, accumulate ? 2 : 0, c, ldc);
}

inline vf ld(const float* p, int cnt) { return cnt == VW ? vload(p) : vloadn(p, cnt); }
inline void st(float* p, vf v, int cnt) {
    if (cnt == VW) vstore(p, v);
    else vstoren(p, v, cnt);
}

// ---------------------------------------------------------------------------------------------
// activation (and dropout mask) backward, vectorised; the mask's bytes are widened lane by lane.

typedef int32_t vi __attribute__((vector_size(sizeof(vf))));
typedef uint8_t vbytes __attribute__((vector_size(VW)));

inline vf mask_select(const uint8_t* mask, int cnt, vf d, float scale) {
    const vf z = {};
    // a whole vector's bytes widened in one instruction: gcc builds the generic conversion below byte
    // by byte (act_backward with relu and the mask over 32 x 128: 1.55 -> 0.48 us)
#if defined(__AVX512F__)
    if (cnt == VW) {
        const __m512i wide = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)mask));
        return (vf)_mm512_maskz_mul_ps(_mm512_test_epi32_mask(wide, wide), (__m512)d, _mm512_set1_ps(scale));
    }
#elif defined(__AVX2__)
    if (cnt == VW) {
        const vi keep = (vi)_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)mask));
        return keep != 0 ? d * scale : z;
    }
#endif
    vbytes mb = {};
    std::memcpy(&mb, mask, (size_t)cnt);
    const vi keep = __builtin_convertvector(mb, vi);
    return keep != 0 ? d * scale : z;
}

template <Act A, bool MASK>
void act_backward_impl(size_t rows, size_t c0, size_t c1, size_t ldm, float* dz, const float* dy, const float* y,
                       const uint8_t* mask, float scale) {
    const vf z = {}, one = vset1(1.0f);
    for (size_t r = 0; r < rows; ++r) {
        const size_t o = r * ldm;
        for (size_t j = c0; j < c1; j += VW) {
            const int cnt = (int)(c1 - j < (size_t)VW ? c1 - j : (size_t)VW);
            vf d = ld(dy + o + j, cnt);
            if (MASK) d = mask_select(mask + o + j, cnt, d, scale);
            if (A != Act::linear) {
                const vf yv = ld(y + o + j, cnt);
                if (A == Act::relu) d = yv > z ? d : z;
                if (A == Act::sigmoid) d = d * (yv * (one - yv));
                if (A == Act::tanh) d = d * (one - yv * yv);
            }
            st(dz + o + j, d, cnt);
        }
    }
}

void act_backward(size_t rows, size_t c0, size_t c1, size_t ldm, float* dz, const float* dy, const float* y,
                  const uint8_t* mask, float scale, Act act) {
    auto run = [&](auto impl) { impl(rows, c0, c1, ldm, dz, dy, y, mask, scale); };
    const bool m = mask != nullptr;
    switch (act) {
        case Act::relu: m ? run(act_backward_impl<Act::relu, true>) : run(act_backward_impl<Act::relu, false>); break;
        case Act::sigmoid:
            m ? run(act_backward_impl<Act::sigmoid, true>) : run(act_backward_impl<Act::sigmoid, false>);
            break;
        case Act::tanh: m ? run(act_backward_impl<Act::tanh, true>) : run(act_backward_impl<Act::tanh, false>); break;
        default: m ? run(act_backward_impl<Act::linear, true>) : run(act_backward_impl<Act::linear, false>); break;
    }
}

// ---------------------------------------------------------------------------------------------
// sparse input: which entries of a row are non-zero, as a bitmap the gemm index lists are built from.

bool nonzero_bits(const float* x, size_t k, uint64_t* bits) {
    constexpr uint32_t kExp = 0x7f800000u, kAbs = 0x7fffffffu;  // non-finite: |bits| >= kExp
    const size_t words = (k + 63) / 64;
    for (size_t w = 0; w < words; ++w) bits[w] = 0;
    size_t p = 0;
    uint32_t top = 0;  // the largest |bit pattern| seen
#if defined(__AVX512F__)
    // whole words in a register (or-ing into memory per vector made a store-forwarding chain: 32 rows
    // of 784, 1.4 -> 0.9 us). the finiteness check is an unsigned max of the patterns on the integer
    // units, which this loop leaves idle (+0.13 us per 32 rows, from cache).
    const __m512 zero = _mm512_setzero_ps();
    const __m512i abs_mask = _mm512_set1_epi32((int)kAbs);
    __m512i vtop = _mm512_setzero_si512();
    for (; p + 64 <= k; p += 64) {
        uint64_t word = 0;
        for (int q = 0; q < 4; ++q) {
            const __m512 v = _mm512_loadu_ps(x + p + 16 * q);
            word |= (uint64_t)_mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ) << (16 * q);
            vtop = _mm512_max_epu32(vtop, _mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        }
        bits[p >> 6] = word;
    }
    for (; p + 16 <= k; p += 16) {
        const __m512 v = _mm512_loadu_ps(x + p);
        const __mmask16 nz = _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ);
        vtop = _mm512_max_epu32(vtop, _mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        bits[p >> 6] |= (uint64_t)nz << (p & 63);  // p is a multiple of 16: never straddles a word
    }
    top = (uint32_t)_mm512_reduce_max_epu32(vtop);
#elif defined(__AVX2__)
    // as above, 8 floats per compare, gathered by movemask: 32 rows of 784 from cache 1.6 us (the
    // scalar loop below 26 us; these scans are every batch's).
    const __m256 zero = _mm256_setzero_ps();
    const __m256i abs_mask = _mm256_set1_epi32((int)kAbs);
    __m256i vtop = _mm256_setzero_si256();
    auto nonzero8 = [&](const float* xp) {
        const __m256 v = _mm256_loadu_ps(xp);
        vtop = _mm256_max_epu32(vtop, _mm256_and_si256(_mm256_castps_si256(v), abs_mask));
        return (uint64_t)(uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
    };
    for (; p + 64 <= k; p += 64) {
        uint64_t word = 0;
        for (int q = 0; q < 8; ++q) word |= nonzero8(x + p + 8 * q) << (8 * q);
        bits[p >> 6] = word;
    }
    for (; p + 8 <= k; p += 8) bits[p >> 6] |= nonzero8(x + p) << (p & 63);  // never straddles a word
    alignas(32) uint32_t lanes[8];
    _mm256_store_si256((__m256i*)lanes, vtop);
    for (uint32_t l : lanes) top = std::max(top, l);
#else
    // portable vectors (sse2 on x86-64, neon on aarch64): each lane's compare result (all ones or 0)
    // and-ed with its bit, or-ed over 8 vectors, the lanes or-ed into 32 bits; non-finite lanes (exponent
    // bits all set) or-ed into one flag vector. 32 rows of 784 from cache: 25.3 -> 3.7 us (x86-64, sse2).
    typedef uint32_t vu __attribute__((vector_size(sizeof(vf))));
    static_assert(sizeof(vu) == 4 * sizeof(uint32_t), "4 lanes");
    const vu lane_bit = {1u, 2u, 4u, 8u}, exp_bits = {kExp, kExp, kExp, kExp};
    vu bad = {};
    auto nonzero32 = [&](const float* xp) {
        vu acc = {};
        for (int q = 0; q < 8; ++q) {
            const vf v = vload(xp + 4 * q);
            const vu u = (vu)v;
            acc |= (vu)(v != vf{}) & (lane_bit << (4 * q));
            bad |= (vu)((u & exp_bits) == exp_bits);
        }
        return (uint64_t)(acc[0] | acc[1] | acc[2] | acc[3]);
    };
    for (; p + 64 <= k; p += 64) bits[p >> 6] = nonzero32(x + p) | nonzero32(x + p + 32) << 32;
    for (; p + 32 <= k; p += 32) bits[p >> 6] |= nonzero32(x + p) << (p & 63);  // never straddles a word
    if ((bad[0] | bad[1] | bad[2] | bad[3]) != 0) top = kExp;
#endif
    for (; p < k; ++p) {
        uint32_t b;
        std::memcpy(&b, x + p, sizeof b);
        top = std::max(top, b & kAbs);
        bits[p >> 6] |= (uint64_t)(x[p] != 0.0f) << (p & 63);
    }
    return top >= kExp;
}

// on the bit patterns: NaN and Inf are the floats whose exponent bits are all set. 4 vectors per step,
// or-ed, one test per step: runs at memory speed (188 MB of mnist in ~7 ms on one core, 4x the
// compiler's float loop).
bool any_nonfinite(const float* x, size_t n) {
    constexpr uint32_t kExp = 0x7f800000u;
    size_t i = 0;
#if defined(__AVX512F__)
    const __m512i e = _mm512_set1_epi32((int)kExp);
    for (; i + 64 <= n; i += 64) {
        __mmask16 m = 0;
        for (int u = 0; u < 4; ++u) {
            const __m512i b = _mm512_loadu_si512(x + i + 16 * u);
            m |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(b, e), e);
        }
        if (m) return true;
    }
#elif defined(__AVX2__)
    const __m256i e = _mm256_set1_epi32((int)kExp);
    for (; i + 32 <= n; i += 32) {
        __m256i m = _mm256_setzero_si256();
        for (int u = 0; u < 4; ++u) {
            const __m256i b = _mm256_loadu_si256((const __m256i*)(x + i + 8 * u));
            m = _mm256_or_si256(m, _mm256_cmpeq_epi32(_mm256_and_si256(b, e), e));
        }
        if (!_mm256_testz_si256(m, m)) return true;
    }
#endif
    uint32_t bad = 0;
    for (; i < n; ++i) {
        uint32_t b;
        std::memcpy(&b, x + i, sizeof b);
        bad |= (uint32_t)((b & kExp) == kExp);
    }
    return bad != 0;
}

// ---------------------------------------------------------------------------------------------
// optimizers: one pass per arena part, exactly keras' float32 sequence of operations
// (../shared/KERAS_SEMANTICS.md), on whole vectors; the tail is the same code on a partial vector.
// the penalty sums of the updated weights are kept per lane and added in lane order, so they depend
// only on the part's bounds, which the trainer fixes independently of the thread count.

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

// sums lanes in order into the double accumulators.
inline void flush(vf& sq, vf& ab, double* sum_sq, double* sum_abs) {
    for (int l = 0; l < VW; ++l) {
        *sum_sq += sq[l];
        *sum_abs += ab[l];
    }
    sq = vf{};
    ab = vf{};
}

// calls body(offset, count) over a (rows, cols) block with row stride ld, in whole vectors, then the
// partial tail of each row; the lane sums are added to the doubles every 64 rows and at the end (so a
// block cut into calls of 64 rows sums exactly as one call: optim.h's kOptRows).
template <class Body>
inline void for_vectors(size_t rows, size_t cols, size_t ld, double* sum_sq, double* sum_abs, Body body) {
    vf sq = {}, ab = {};
    for (size_t r = 0; r < rows; ++r) {
        const size_t o = r * ld;
        size_t j = 0;
        for (; j + VW <= cols; j += VW) body(o + j, VW, sq, ab);
        if (j < cols) body(o + j, (int)(cols - j), sq, ab);
        if (r % 64 == 63) flush(sq, ab, sum_sq, sum_abs);
    }
    flush(sq, ab, sum_sq, sum_abs);
}

// adam's scalars, copied out of the OptCoef once per call: a local copy is not reloaded after every
// store the way fields read through a reference are (a float store might alias them).
struct AdamScalars {
    float alpha, b1, b2, eps, l1, two_l2, wd, lr;
    explicit AdamScalars(const OptCoef& c)
        : alpha(c.alpha), b1(c.one_minus_beta_1), b2(c.one_minus_beta_2), eps(c.epsilon), l1(c.l1),
          two_l2(2.0f * c.l2), wd(c.wd), lr(c.wd_lr) {}
};

// L1, L2: coupled regularizer terms present (and so the penalty sums needed); DECAY: decoupled
// weight decay; AMS: amsgrad. each combination compiles to its own loop with nothing unused in it.
// one vector (cnt lanes) at offset i, its gradient gi already loaded: the whole update, written once
// for adam and the sweep's fused gradient + update (sparse_grad_adam).
template <bool L1, bool L2, bool DECAY, bool AMS>
inline void adam_vector(size_t i, int cnt, vf gi, float* w, float* m, float* v, float* vhat, const AdamScalars k,
                        vf& sq, vf& ab) {
    const float alpha = k.alpha, b1 = k.b1, b2 = k.b2, eps = k.eps, l1 = k.l1, two_l2 = k.two_l2, wd = k.wd,
                lr = k.lr;
    vf wi = ld(w + i, cnt), mi = ld(m + i, cnt), vi = ld(v + i, cnt);
    // the regularizer gradient joins the loss gradient (keras: tape.gradient of l1*sum|w| + l2*sum(w^2))
    if (L1 && L2) gi = gi + (two_l2 * wi + l1 * vsign(wi));
    else if (L2) gi = gi + two_l2 * wi;
    else if (L1) gi = gi + l1 * vsign(wi);
    if (DECAY) wi = wi - wi * wd * lr;  // keras: variable - variable * wd * lr
    mi = mi + (gi - mi) * b1;           // m += (g - m) * (1 - beta_1)
    vi = vi + (gi * gi - vi) * b2;      // v += (g*g - v) * (1 - beta_2)
    st(m + i, mi, cnt);
    st(v + i, vi, cnt);
    if (AMS) {
        vi = vmax(ld(vhat + i, cnt), vi);
        st(vhat + i, vi, cnt);
    }
    wi = wi - (mi * alpha) / (vsqrt(vi) + eps);  // w -= m * alpha / (sqrt(v) + epsilon)
    st(w + i, wi, cnt);
    // the next step's penalty, only where a penalty exists; a multiply-add: one add-pipe operation
    // fewer per vector (784 x 64 fused update, bench/sweep_kernels.cpp: 22.6 -> 22.0 us)
    if (L2) sq = vfma(wi, wi, sq);
    if (L1) ab += vabs(wi);
}

// the 16 compiled variants of an adam kernel Impl<L1, L2, DECAY, AMS>::run, picked by the step's
// coefficients (l1, l2, decay) and whether amsgrad's vhat is given.
template <template <bool, bool, bool, bool> class Impl, class... Args>
inline void run_adam_variant(const OptCoef& c, bool ams, Args&&... args) {
    using Fn = decltype(&Impl<false, false, false, false>::run);
    static const Fn table[16] = {
        Impl<false, false, false, false>::run, Impl<false, false, false, true>::run,
        Impl<false, false, true, false>::run,  Impl<false, false, true, true>::run,
        Impl<false, true, false, false>::run,  Impl<false, true, false, true>::run,
        Impl<false, true, true, false>::run,   Impl<false, true, true, true>::run,
        Impl<true, false, false, false>::run,  Impl<true, false, false, true>::run,
        Impl<true, false, true, false>::run,   Impl<true, false, true, true>::run,
        Impl<true, true, false, false>::run,   Impl<true, true, false, true>::run,
        Impl<true, true, true, false>::run,    Impl<true, true, true, true>::run,
    };
    const int sel = (c.l1 != 0.0f ? 8 : 0) | (c.l2 != 0.0f ? 4 : 0) | (c.wd != 0.0f ? 2 : 0) | (ams ? 1 : 0);
    table[sel](std::forward<Args>(args)...);
}

template <bool L1, bool L2, bool DECAY, bool AMS>
struct AdamRows {
    static void run(size_t rows, size_t cols, size_t ldw, float* w, const float* g, float* m, float* v, float* vhat,
                    const OptCoef& c, double* sum_sq, double* sum_abs) {
        const AdamScalars k(c);
        for_vectors(rows, cols, ldw, sum_sq, sum_abs, [&](size_t i, int cnt, vf& sq, vf& ab) {
            adam_vector<L1, L2, DECAY, AMS>(i, cnt, ld(g + i, cnt), w, m, v, vhat, k, sq, ab);
        });
    }
};

void adam(size_t rows, size_t cols, size_t ldw, float* w, const float* g, float* m, float* v, float* vhat,
          const OptCoef& c, double* sum_sq, double* sum_abs) {
    run_adam_variant<AdamRows>(c, vhat != nullptr, rows, cols, ldw, w, g, m, v, vhat, c, sum_sq, sum_abs);
}

void sgd(size_t rows, size_t cols, size_t ldw, float* w, const float* g, float* mom, const OptCoef& c,
         double* sum_sq, double* sum_abs) {
    const float lr = c.lr, mu = c.momentum, l1 = c.l1, two_l2 = 2.0f * c.l2, wd = c.wd, wlr = c.wd_lr;
    const bool reg = c.l1 != 0.0f || c.l2 != 0.0f, decay = wd != 0.0f;
    for_vectors(rows, cols, ldw, sum_sq, sum_abs, [&](size_t i, int cnt, vf& sq, vf& ab) {
        vf wi = ld(w + i, cnt), gi = ld(g + i, cnt);
        if (reg) gi = gi + (two_l2 * wi + l1 * vsign(wi));
        if (decay) wi = wi - wi * wd * wlr;
        if (mom) {  // keras sgd.py: m = m*momentum - g*lr; w += m, or w += m*momentum - g*lr (nesterov)
            const vf mi = ld(mom + i, cnt) * mu - gi * lr;
            st(mom + i, mi, cnt);
            wi = c.nesterov ? wi + (mi * mu - gi * lr) : wi + mi;
        } else {
            wi = wi - gi * lr;
        }
        st(w + i, wi, cnt);
        sq = vfma(wi, wi, sq);
        ab += vabs(wi);
    });
}

// ---------------------------------------------------------------------------------------------
// dropout: element e keeps when word e % 4 of philox block e / 4 is below the threshold (rng.h).
// with avx-512, 16 blocks (64 elements) are generated at once, lane by lane, and their keep bits
// interleaved into element order; with avx2 8 blocks (32 elements); elsewhere one block at a time.

#if defined(__AVX512F__)
// the 16-lane integer operations of philox_blocks (below).
inline __m512i set1_u32(__m512i, uint32_t x) { return _mm512_set1_epi32((int)x); }
inline __m512i lane_index(__m512i) { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
inline __m512i add_u32(__m512i a, __m512i b) { return _mm512_add_epi32(a, b); }
inline __m512i xor3(__m512i a, __m512i b, __m512i c) { return _mm512_xor_si512(_mm512_xor_si512(a, b), c); }
// hi and lo 32 bits of a * m per lane.
inline void mulhilo(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
    const __m512i even = _mm512_mul_epu32(a, m);                         // lanes 0, 2, ...: 64-bit products
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);  // lanes 1, 3, ...
    hi = _mm512_mask_mov_epi32(_mm512_srli_epi64(even, 32), (__mmask16)0xAAAA, odd);
    lo = _mm512_mask_mov_epi32(even, (__mmask16)0xAAAA, _mm512_slli_epi64(odd, 32));  // cheaper than vpmulld
}
#elif defined(__AVX2__)
// the 8-lane integer operations of philox_blocks (below).
inline __m256i set1_u32(__m256i, uint32_t x) { return _mm256_set1_epi32((int)x); }
inline __m256i lane_index(__m256i) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
inline __m256i add_u32(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
inline __m256i xor3(__m256i a, __m256i b, __m256i c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
// hi and lo 32 bits of a * m per lane.
inline void mulhilo(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
    const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, ...: 64-bit products
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, ...
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
// philox blocks q0[g] + lane of (seed, stream, step), one block per lane of an integer vector VI, for
// G groups: c0..c3[g] get the four words (rng.h's philox4x32_10). the groups are independent chains,
// interleaved round by round so that the multiplier latency of one hides behind the others.
template <class VI, int G>
inline void philox_blocks(const uint32_t (&q0)[G], uint32_t stream, uint64_t step, uint64_t seed, VI (&c0)[G],
                          VI (&c1)[G], VI (&c2)[G], VI (&c3)[G]) {
    const VI lanes = lane_index(VI{});
    for (int g = 0; g < G; ++g) {
        c0[g] = add_u32(set1_u32(VI{}, q0[g]), lanes);
        c1[g] = set1_u32(VI{}, stream);
        c2[g] = set1_u32(VI{}, (uint32_t)step);
        c3[g] = set1_u32(VI{}, (uint32_t)(step >> 32));
    }
    const VI m0 = set1_u32(VI{}, 0xD2511F53u), m1 = set1_u32(VI{}, 0xCD9E8D57u);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const VI vk0 = set1_u32(VI{}, k0), vk1 = set1_u32(VI{}, k1);
        for (int g = 0; g < G; ++g) {
            VI hi0, lo0, hi1, lo1;
            mulhilo(c0[g], m0, hi0, lo0);
            mulhilo(c2[g], m1, hi1, lo1);
            c0[g] = xor3(hi1, c1[g], vk0);
            c1[g] = lo1;
            c2[g] = xor3(hi0, c3[g], vk1);
            c3[g] = lo0;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}
#endif

#if defined(__AVX512F__)
constexpr size_t kDropGroup = 64;  // elements per group, drawn at once
constexpr int kDropAtOnce = 4;     // groups interleaved
using DropKeep = uint64_t;         // a group's keep bits

// keep bits of G groups of 64 elements: keep[g] bit t = element 4*q0[g] + t, from the 16 philox
// blocks q0[g] .. q0[g] + 15.
template <int G>
inline void keep_groups(const uint32_t (&q0)[G], uint32_t stream, uint64_t step, uint64_t seed, uint32_t threshold,
                        uint64_t (&keep)[G]) {
    __m512i c0[G], c1[G], c2[G], c3[G];
    philox_blocks(q0, stream, step, seed, c0, c1, c2, c3);
    const __m512i thr = _mm512_set1_epi32((int)threshold);
    for (int g = 0; g < G; ++g) {
        const uint64_t w0 = _mm512_cmplt_epu32_mask(c0[g], thr), w1 = _mm512_cmplt_epu32_mask(c1[g], thr);
        const uint64_t w2 = _mm512_cmplt_epu32_mask(c2[g], thr), w3 = _mm512_cmplt_epu32_mask(c3[g], thr);
        keep[g] = _pdep_u64(w0, 0x1111111111111111ull) | _pdep_u64(w1, 0x2222222222222222ull) |
                  _pdep_u64(w2, 0x4444444444444444ull) | _pdep_u64(w3, 0x8888888888888888ull);
    }
}

// applies 64 keep bits to x[0..64) and writes the mask bytes.
inline void apply_keep(uint64_t keep, float* x, uint8_t* mask, float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    for (int v = 0; v < 4; ++v) {
        const __mmask16 k = (__mmask16)(keep >> (16 * v));
        _mm512_storeu_ps(x + 16 * v, _mm512_maskz_mul_ps(k, _mm512_loadu_ps(x + 16 * v), vs));
    }
    _mm512_storeu_si512(mask, _mm512_maskz_set1_epi8((__mmask64)keep, 1));
}
#elif defined(__AVX2__)
constexpr size_t kDropGroup = 32;  // elements per group, drawn at once
constexpr int kDropAtOnce = 2;     // groups interleaved (16 ymm registers)
struct DropKeep {                  // a group's keep masks, in element order
    __m256i v[4];
};

// keep masks of G groups of 32 elements: keep[g].v[k] lane i all ones when element 4*q0[g] + 8k + i
// is kept, from the 8 philox blocks q0[g] .. q0[g] + 7 (lane l: block l, as the avx-512 keep_groups);
// the four words' compares are transposed into element order.
template <int G>
inline void keep_groups(const uint32_t (&q0)[G], uint32_t stream, uint64_t step, uint64_t seed, uint32_t threshold,
                        DropKeep (&keep)[G]) {
    __m256i c0[G], c1[G], c2[G], c3[G];
    philox_blocks(q0, stream, step, seed, c0, c1, c2, c3);
    // word < threshold, unsigned: both sign bits flipped, compared signed
    const __m256i flip = _mm256_set1_epi32((int)0x80000000u);
    const __m256i thr = _mm256_set1_epi32((int)(threshold ^ 0x80000000u));
    auto below = [&](__m256i c) { return _mm256_cmpgt_epi32(thr, _mm256_xor_si256(c, flip)); };
    for (int g = 0; g < G; ++g) {
        const __m256i w0 = below(c0[g]), w1 = below(c1[g]), w2 = below(c2[g]), w3 = below(c3[g]);
        // 4 x 4 transposes per lane: e_l holds blocks l (low lane) and l + 4 (high lane), words in order
        const __m256i a = _mm256_unpacklo_epi32(w0, w1), b = _mm256_unpacklo_epi32(w2, w3);
        const __m256i c = _mm256_unpackhi_epi32(w0, w1), d = _mm256_unpackhi_epi32(w2, w3);
        const __m256i e0 = _mm256_unpacklo_epi64(a, b), e1 = _mm256_unpackhi_epi64(a, b);
        const __m256i e2 = _mm256_unpacklo_epi64(c, d), e3 = _mm256_unpackhi_epi64(c, d);
        keep[g].v[0] = _mm256_permute2x128_si256(e0, e1, 0x20);  // blocks 0, 1: elements 0 .. 7
        keep[g].v[1] = _mm256_permute2x128_si256(e2, e3, 0x20);  // blocks 2, 3
        keep[g].v[2] = _mm256_permute2x128_si256(e0, e1, 0x31);  // blocks 4, 5
        keep[g].v[3] = _mm256_permute2x128_si256(e2, e3, 0x31);  // blocks 6, 7
    }
}

// applies 32 elements' keep masks to x[0..32) and writes the mask bytes.
inline void apply_keep(const DropKeep& keep, float* x, uint8_t* mask, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (int k = 0; k < 4; ++k)
        _mm256_storeu_ps(x + 8 * k, _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vs),
                                                  _mm256_castsi256_ps(keep.v[k])));
    // masks to bytes: packs interleave the 128-bit lanes, the permute puts the 4-byte groups back
    const __m256i bytes =
        _mm256_packs_epi16(_mm256_packs_epi32(keep.v[0], keep.v[1]), _mm256_packs_epi32(keep.v[2], keep.v[3]));
    const __m256i order = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i*)mask, _mm256_and_si256(order, _mm256_set1_epi8(1)));
}
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
// dropout_forward's vector step: G groups of kDropGroup elements starting at elements e[g] (multiples
// of 4): their keeps drawn together, then applied.
template <int G>
inline void drop_groups(const uint64_t (&e)[G], float* x, uint8_t* mask, uint64_t seed, uint32_t stream, uint64_t step,
                        uint32_t threshold, float scale) {
    uint32_t q[G];
    for (int g = 0; g < G; ++g) q[g] = (uint32_t)(e[g] >> 2);
    DropKeep keep[G];
    keep_groups<G>(q, stream, step, seed, threshold, keep);
    for (int g = 0; g < G; ++g) apply_keep(keep[g], x + e[g], mask + e[g], scale);
}
#endif

// the element-by-element form, for whatever the vector path leaves: column tails, unaligned starts.
void dropout_scalar(float* xr, uint8_t* mr, uint64_t e0, size_t j, size_t c1, uint64_t seed, uint32_t stream,
                    uint64_t step, uint64_t keep_threshold, float scale) {
    while (j < c1) {
        const uint64_t e = e0 + j;
        if ((e & 3) == 0 && j + 4 <= c1) {  // a whole philox block: use its four words
            const uint64_t q = e >> 2;
            const Philox4x32 blk =
                philox4x32_10((uint32_t)q, stream, (uint32_t)step, (uint32_t)(step >> 32) ^ (uint32_t)(q >> 32), seed);
            for (int t = 0; t < 4; ++t) {
                const bool keep = (uint64_t)blk.v[t] < keep_threshold;
                mr[j + t] = (uint8_t)keep;
                xr[j + t] = keep ? xr[j + t] * scale : 0.0f;
            }
            j += 4;
        } else {
            const bool keep = (uint64_t)philox_word(seed, stream, step, e) < keep_threshold;
            mr[j] = (uint8_t)keep;
            xr[j] = keep ? xr[j] * scale : 0.0f;
            j += 1;
        }
    }
}

void dropout_forward(size_t rows, size_t width, size_t c0, size_t c1, float* x, uint8_t* mask, uint64_t seed,
                     uint32_t stream, uint64_t step, uint64_t keep_threshold, float scale) {
    size_t vec_cols = c0;  // columns [c0, vec_cols) of every row go through the vector path
#if defined(__AVX512F__) || defined(__AVX2__)
    // whole groups (kDropGroup elements) that start on a block boundary in every row (and a threshold
    // below 2^32: rate > 0), kDropAtOnce groups at a time across rows and columns
    if (keep_threshold < (1ull << 32) && width % 4 == 0 && c0 % 4 == 0 && ((uint64_t)rows * width) >> 34 == 0) {
        vec_cols = c0 + (c1 - c0) / kDropGroup * kDropGroup;
        const size_t per_row = (vec_cols - c0) / kDropGroup, groups = rows * per_row;
        const uint32_t thr = (uint32_t)keep_threshold;
        auto element = [&](size_t g) { return (uint64_t)(g / per_row) * width + c0 + (g % per_row) * kDropGroup; };
        size_t g = 0;
        for (; g + kDropAtOnce <= groups; g += kDropAtOnce) {
            uint64_t e[kDropAtOnce];
            for (int i = 0; i < kDropAtOnce; ++i) e[i] = element(g + (size_t)i);
            drop_groups<kDropAtOnce>(e, x, mask, seed, stream, step, thr, scale);
        }
        for (; g < groups; ++g) {
            const uint64_t e[1] = {element(g)};
            drop_groups<1>(e, x, mask, seed, stream, step, thr, scale);
        }
    }
#endif
    if (vec_cols < c1)
        for (size_t r = 0; r < rows; ++r)
            dropout_scalar(x + r * width, mask + r * width, (uint64_t)r * width, vec_cols, c1, seed, stream, step,
                           keep_threshold, scale);
}

// ---------------------------------------------------------------------------------------------
// the first layer's sweep (sweep.h): weight gradient rows from a column-major sparsity map, and a
// chunk of features' contribution to the next batch's forward. both sum in the same order as the
// gemm kernels above (over increasing batch rows, over increasing features), so results are equal.

inline size_t ctz64(uint64_t u) { return (size_t)__builtin_ctzll(u); }

// cols (IN, bw words): bit r of feature p set when row r's bitmap has bit p; features of the row-bitmap
// words [w0, w1). with avx2 (and so avx-512), a bit transpose, 32 rows x 64 features at a time: the
// rows' words, as a 32 x 8 byte matrix, are transposed to 8 vectors of 32 bytes (byte j of every row;
// bytes paired by pshufb, then an 8 x 8 transpose of 16-bit pairs), and bit b of those bytes, moved to
// the top, is one movemask: the 32-bit column word of feature 8j + b. 32 x 784: 0.63 us (the scalar
// loop below 5.9 us; avx-512 masked ors of each row's bit into the lanes of its features 1.16 us).
void column_bits(const uint64_t* row_bits, size_t B, size_t words, size_t w0, size_t w1, size_t IN, uint64_t* cols) {
    const size_t bw = (B + 63) / 64;
    const size_t p0 = w0 * 64, p1 = w1 * 64 < IN ? w1 * 64 : IN;
    if (p1 <= p0) return;
#if defined(__AVX2__)
    const __m256i pair_bytes = _mm256_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15,  //
                                                0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    for (size_t w = w0; w < w1; ++w) {
        const size_t f = w * 64, nf = p1 - f < 64 ? p1 - f : 64;
        for (size_t rb = 0; rb < B; rb += 32) {
            alignas(32) uint64_t u[32];
            for (size_t i = 0; i < 32; ++i) u[i] = rb + i < B ? row_bits[(rb + i) * words + w] : 0;
            // r[k]: rows 2k, 2k+1 in the low lane and 16+2k, 17+2k in the high one, bytes paired by index
            __m256i r[8], t[8];
            for (int k = 0; k < 8; ++k)
                r[k] = _mm256_shuffle_epi8(_mm256_loadu2_m128i((const __m128i*)(u + 16 + 2 * k), (const __m128i*)(u + 2 * k)),
                                           pair_bytes);
            for (int k = 0; k < 8; k += 2) {  // 8 x 8 transpose of 16-bit pairs, per lane
                t[k] = _mm256_unpacklo_epi16(r[k], r[k + 1]);
                t[k + 1] = _mm256_unpackhi_epi16(r[k], r[k + 1]);
            }
            for (int k = 0; k < 8; k += 4)
                for (int h = 0; h < 2; ++h) {
                    r[k + 2 * h] = _mm256_unpacklo_epi32(t[k + h], t[k + h + 2]);
                    r[k + 2 * h + 1] = _mm256_unpackhi_epi32(t[k + h], t[k + h + 2]);
                }
            for (int k = 0; k < 4; ++k) {
                t[2 * k] = _mm256_unpacklo_epi64(r[k], r[k + 4]);
                t[2 * k + 1] = _mm256_unpackhi_epi64(r[k], r[k + 4]);
            }
            // t[j]: byte j of rows rb .. rb+31, in order
            const size_t half = rb % 64, word = rb / 64;
            for (int j = 0; j < 8; ++j) {
                __m256i v = t[j];
                for (int b = 7; b >= 0; --b, v = _mm256_add_epi8(v, v)) {
                    const size_t feature = (size_t)(8 * j + b);
                    if (feature >= nf) continue;
                    const uint64_t m = (uint32_t)_mm256_movemask_epi8(v);
                    uint64_t& out = cols[(f + feature) * bw + word];
                    out = half == 0 ? m : out | (m << 32);
                }
            }
        }
    }
#else
    // 8 x 8 bit transposes in 64-bit integers (hacker's delight, transpose8): byte i of m is row
    // r0 + i's byte j, and after it byte b holds those rows' bits of feature 8j + b. 32 x 784: 5.9 ->
    // 2.9 us (x86-64; or-ing each set bit into memory before)
    auto transpose8 = [](uint64_t m) {
        uint64_t t = (m ^ (m >> 7)) & 0x00AA00AA00AA00AAull;
        m ^= t ^ (t << 7);
        t = (m ^ (m >> 14)) & 0x0000CCCC0000CCCCull;
        m ^= t ^ (t << 14);
        t = (m ^ (m >> 28)) & 0x00000000F0F0F0F0ull;
        return m ^ t ^ (t << 28);
    };
    for (size_t w = w0; w < w1; ++w) {
        const size_t f = w * 64, nf = p1 - f < 64 ? p1 - f : 64;
        for (size_t rw = 0; rw < bw; ++rw) {
            uint64_t out[64] = {};  // bit r % 64 of feature f + b, rows of row word rw
            for (size_t g = 0; g < 8 && rw * 64 + g * 8 < B; ++g) {
                uint64_t u[8];
                for (size_t i = 0; i < 8; ++i) {
                    const size_t r = rw * 64 + g * 8 + i;
                    u[i] = r < B ? row_bits[r * words + w] : 0;
                }
                // 8 x 8 byte transpose (swaps of 32-, 16-, 8-bit blocks): u[j] byte i = row i's byte j
                constexpr uint64_t kKeep[3] = {0x00000000FFFFFFFFull, 0x0000FFFF0000FFFFull, 0x00FF00FF00FF00FFull};
                for (size_t d = 4, sh = 32, stage = 0; d > 0; d /= 2, sh /= 2, ++stage) {
                    const uint64_t keep = kKeep[stage];
                    for (size_t a = 0; a < 8; ++a) {
                        if (a & d) continue;
                        const uint64_t t = ((u[a] >> sh) ^ u[a + d]) & keep;
                        u[a + d] ^= t;
                        u[a] ^= t << sh;
                    }
                }
                for (size_t j = 0; j < 8; ++j) {
                    if (u[j] == 0) continue;
                    const uint64_t m = transpose8(u[j]);
                    for (size_t b = 0; b < 8; ++b) out[8 * j + b] |= ((m >> (8 * b)) & 0xff) << (8 * g);
                }
            }
            for (size_t b = 0; b < nf; ++b) cols[(f + b) * bw + rw] = out[b];
        }
    }
#endif
}

// one weight-gradient row on V vectors: out = sum over the rows r set in cols[p] (increasing) of
// x_r[p] * dz(r, :). summed in a local array, copied out once (see tile_sum).
template <int V, bool PART>
inline void wgrad_row(size_t p, const uint64_t* cols, size_t bw, const float* const* xrows, const float* dz,
                      size_t ldz, int nlast, vf (&out)[V]) {
    vf acc[V];
    for (int v = 0; v < V; ++v) acc[v] = vf{};
    const uint64_t* cm = cols + p * bw;
    for (size_t w = 0; w < bw; ++w)
        for (uint64_t u = cm[w]; u; u &= u - 1) {
            const size_t r = w * 64 + ctz64(u);
            const vf a = vset1(xrows[r][p]);
            const float* d = dz + r * ldz;
            for (int v = 0; v < V; ++v)
                acc[v] = vfma(a, (PART && v == V - 1) ? vloadn(d + v * VW, nlast) : vload(d + v * VW), acc[v]);
        }
    for (int v = 0; v < V; ++v) out[v] = acc[v];
}

// g rows [0, p1 - p0) of one column tile: g(p, :) = sum over the rows r set in cols[p] of x_r[p] * dz(r, :).
template <int V, bool PART>
inline void wgrad_tile(size_t p0, size_t p1, const uint64_t* cols, size_t bw, const float* const* xrows,
                       const float* dz, size_t ldz, float* g, size_t ldg, int nlast) {
    for (size_t p = p0; p < p1; ++p) {
        vf acc[V];
        wgrad_row<V, PART>(p, cols, bw, xrows, dz, ldz, nlast, acc);
        float* gr = g + (p - p0) * ldg;
        for (int v = 0; v < V; ++v) {
            if (PART && v == V - 1) vstoren(gr + v * VW, acc[v], nlast);
            else vstore(gr + v * VW, acc[v]);
        }
    }
}

// calls tile<V, PART>(column offset, nlast) over `width` columns in tiles of NT vectors.
template <int NT, template <int, bool> class Tile, class... Args>
inline void over_column_tiles(size_t width, Args&&... args) {
    static_assert(NT >= 1 && NT <= 8, "tiles of 1 to 8 vectors");
    constexpr size_t NR = (size_t)NT * VW;
    size_t j = 0;
    for (; j + NR <= width; j += NR) Tile<NT, false>::run(j, VW, args...);
    const size_t rem = width - j;
    if (rem == 0) return;
    const int nvec = (int)((rem + VW - 1) / VW), nlast = (int)(rem - (size_t)(nvec - 1) * VW);
    switch (nvec) {  // 1 <= nvec <= NT
        case 1: Tile<1, true>::run(j, nlast, args...); break;
        case 2: if constexpr (NT >= 2) Tile<2, true>::run(j, nlast, args...); break;
        case 3: if constexpr (NT >= 3) Tile<3, true>::run(j, nlast, args...); break;
        case 4: if constexpr (NT >= 4) Tile<4, true>::run(j, nlast, args...); break;
        case 5: if constexpr (NT >= 5) Tile<5, true>::run(j, nlast, args...); break;
        case 6: if constexpr (NT >= 6) Tile<6, true>::run(j, nlast, args...); break;
        case 7: if constexpr (NT >= 7) Tile<7, true>::run(j, nlast, args...); break;
        case 8: if constexpr (NT >= 8) Tile<8, true>::run(j, nlast, args...); break;
        default: break;
    }
}

// vectors per tile of the sweep's row kernels (gradient rows, forward rows): a whole 64-column panel
// where the registers hold it, so each row's set bits and inputs are walked once per panel. avx2: 8
// ymm accumulators of 16 (gemm tiles of 2 made the forward walk every row 4 times: 784 x 64 panel,
// 32 rows, 19.2 -> 8.6 us); avx-512: 4 zmm; generic: the gemm's.
constexpr int SV = VW == 8 ? 8 : NV;

template <int V, bool PART>
struct WgradTile {
    static void run(size_t j, int nlast, size_t p0, size_t p1, const uint64_t* cols, size_t bw,
                    const float* const* xrows, const float* dz, size_t ldz, float* g, size_t ldg) {
        wgrad_tile<V, PART>(p0, p1, cols, bw, xrows, dz + j, ldz, g + j, ldg, nlast);
    }
};

void sparse_weight_grad(size_t p0, size_t p1, size_t width, const uint64_t* cols, size_t bw, const float* const* xrows,
                        const float* dz, size_t ldz, float* g, size_t ldg) {
    over_column_tiles<SV, WgradTile>(width, p0, p1, cols, bw, xrows, dz, ldz, g, ldg);
}

// the sweep's weight gradient and adam update fused, on one full panel (kColBlock columns, PV vectors):
// row p's gradient stays in registers and goes straight into adam_vector, so the divider's sqrt and
// division of row p overlap the next row's multiply-adds (784 x 64: 22 -> 19 us). the sums, the rows,
// the lane sums and their flushes run in sparse_weight_grad's and for_vectors' order: w, m, v and the
// penalty equal the two calls.
constexpr int PV = (int)(kColBlock / VW);
// NP panels per row walk: 2 where their 2 * PV accumulators fit the registers (avx-512: 8 zmm of 32),
// so a thread owning two panels (one thread on the study's 128 units) walks each row's set bits and
// inputs once: 784 x 128, 47.2 -> 45.8 us (bench/sweep_kernels.cpp); one thread's epoch, L2 model,
// 173 -> 169 ms. (the next batch's output stays per panel: 128-wide rows no longer stay in L1.)
constexpr int kPairPanels = 2 * PV <= 8 ? 2 : 1;
template <int NP>
struct GradAdamPanels {
    template <bool L1, bool L2, bool DECAY, bool AMS>
    struct Rows {
        static void run(size_t p0, size_t p1, const uint64_t* cols, size_t bw, const float* const* xrows, const float* dz,
                        size_t ldz, float* w, float* m, float* v, float* vhat, size_t second, const OptCoef& c,
                        double* sum_sq, double* sum_abs) {
            const AdamScalars k(c);
            vf sq[NP] = {}, ab[NP] = {};
            for (size_t p = p0; p < p1; ++p) {
                vf acc[NP * PV];
                wgrad_row<NP * PV, false>(p, cols, bw, xrows, dz, ldz, VW, acc);
                const size_t o = (p - p0) * kColBlock;
                for (int n = 0; n < NP; ++n)
                    for (int q = 0; q < PV; ++q)
                        adam_vector<L1, L2, DECAY, AMS>(o + (size_t)n * second + (size_t)q * VW, VW, acc[n * PV + q], w, m,
                                                        v, vhat, k, sq[n], ab[n]);
                if ((p - p0) % 64 == 63)
                    for (int n = 0; n < NP; ++n) flush(sq[n], ab[n], sum_sq + n, sum_abs + n);
            }
            for (int n = 0; n < NP; ++n) flush(sq[n], ab[n], sum_sq + n, sum_abs + n);
        }
    };
};

void sparse_grad_adam(size_t p0, size_t p1, const uint64_t* cols, size_t bw, const float* const* xrows,
                      const float* dz, size_t ldz, float* w, float* m, float* v, float* vhat, size_t second,
                      const OptCoef& c, double* sum_sq, double* sum_abs) {
    const bool ams = vhat != nullptr;
    if (second == 0) {
        run_adam_variant<GradAdamPanels<1>::Rows>(c, ams, p0, p1, cols, bw, xrows, dz, ldz, w, m, v, vhat, second, c,
                                                  sum_sq, sum_abs);
    } else if (kPairPanels == 2) {
        run_adam_variant<GradAdamPanels<kPairPanels>::Rows>(c, ams, p0, p1, cols, bw, xrows, dz, ldz, w, m, v, vhat,
                                                            second, c, sum_sq, sum_abs);
    } else {  // one panel after the other: the same sums
        run_adam_variant<GradAdamPanels<1>::Rows>(c, ams, p0, p1, cols, bw, xrows, dz, ldz, w, m, v, vhat, 0, c, sum_sq,
                                                  sum_abs);
        float* const vhat2 = vhat ? vhat + second : nullptr;
        run_adam_variant<GradAdamPanels<1>::Rows>(c, ams, p0, p1, cols, bw, xrows, dz + kColBlock, ldz, w + second,
                                                  m + second, v + second, vhat2, 0, c, sum_sq + 1, sum_abs + 1);
    }
}

// rows of y, one column tile: y = (first ? 0 : y) + sum over the set features p in [p0, p1) of row r
// of x_r[p] * w(p, :); on the last chunk then y = act(y + bias). (two rows at a time over the union of
// their features, each weight row loaded once for both: 784 x 64 panel 8.0 -> 10.1 us, slower.)
template <int V, bool PART>
struct ForwardTile {
    static void run(size_t j, int nlast, size_t rows, size_t p0, size_t p1, const uint64_t* bits, size_t words,
                    const float* const* xrows, const float* w, size_t ldw, const float* bias, int mode, bool first,
                    float* y, size_t ldy) {
        auto load = [&](const float* p) { return PART ? vloadn(p, nlast) : vload(p); };
        auto lv = [&](int v, const float* p) { return (PART && v == V - 1) ? load(p) : vload(p); };
        const size_t w0 = p0 / 64, w1 = (p1 + 63) / 64;
        for (size_t r = 0; r < rows; ++r) {
            float* yr = y + r * ldy + j;
            vf acc[V];
            for (int v = 0; v < V; ++v) acc[v] = first ? vf{} : lv(v, yr + v * VW);
            const float* xr = xrows[r];
            for (size_t wd = w0; wd < w1; ++wd) {
                uint64_t u = bits[r * words + wd];
                if (wd * 64 < p0) u &= ~0ull << (p0 - wd * 64);
                if (wd * 64 + 64 > p1) u &= (p1 - wd * 64 >= 64) ? ~0ull : ((1ull << (p1 - wd * 64)) - 1);
                for (; u; u &= u - 1) {
                    const size_t p = wd * 64 + ctz64(u);
                    const vf a = vset1(xr[p]);
                    const float* wp = w + p * ldw + j;
                    for (int v = 0; v < V; ++v) acc[v] = vfma(a, lv(v, wp + v * VW), acc[v]);
                }
            }
            for (int v = 0; v < V; ++v) {
                vf out = acc[v];
                if (mode != 0) {  // the last chunk: the gemm epilogue (tile_store), bias then relu
                    out = out + (bias ? lv(v, bias + j + v * VW) : vf{});
                    if (mode == 2) out = vrelu(out);
                }
                if (PART && v == V - 1) vstoren(yr + v * VW, out, nlast);
                else vstore(yr + v * VW, out);
            }
        }
    }
};

void sparse_forward_chunk(size_t rows, size_t width, size_t p0, size_t p1, const uint64_t* bits, size_t words,
                          const float* const* xrows, const float* w, size_t ldw, const float* bias, Act act,
                          bool first, bool last, float* y, size_t ldy) {
    const int mode = last ? (act == Act::relu ? 2 : 1) : 0;
    over_column_tiles<SV, ForwardTile>(width, rows, p0, p1, bits, words, xrows, w, ldw, bias, mode, first, y, ldy);
}

}  // namespace

const KernelTable* table() {
    static const KernelTable t = {PYREG_STR(PYREG_ISA), VW, MR, NV * VW, gemm_nn, gemm_tn, act_backward,
                                  nonzero_bits, any_nonfinite, adam, sgd, dropout_forward,
                                  column_bits, sparse_weight_grad, sparse_grad_adam, sparse_forward_chunk};
    return &t;
}

}  // namespace PYREG_ISA
}  // namespace pyreg

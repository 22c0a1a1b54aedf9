// simd_dropout.cpp: the dropout mask of the KernelTable (dropout_forward): inverted dropout in place
// on a block of columns, the keep decisions drawn from philox words (rng.h). compiled once per
// instruction set (simd_isa.h); the mask depends only on (seed, stream, step, element), never on the
// instruction set, the columns a call covers or the thread.
#include "rng.h"
#include "simd_isa.h"

namespace pyreg {
namespace PYREG_ISA {

namespace {

// element e keeps when word e % 4 of philox block e / 4 is below the threshold (rng.h).
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
}  // namespace

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

}  // namespace PYREG_ISA
}  // namespace pyreg

// simd_scan.cpp: the sparsity bitmaps and the NaN/Inf scan of the KernelTable: nonzero_bits (a row's
// non-zero features, which doubles as fit's input check), any_nonfinite (one streaming pass) and
// column_bits (the row bitmaps transposed, by feature, for the first layer's sweep: sweep.h).
// compiled once per instruction set (simd_isa.h); integer and compare work only, nothing rounds.
#include <algorithm>

#include "simd_isa.h"

namespace pyreg {
namespace PYREG_ISA {

// sparse input: which entries of a row are non-zero, as a bitmap the gemm index lists are built from.

bool nonzero_bits(const float* x, size_t k, uint64_t* bits) {
    constexpr uint32_t kExp = 0x7f800000u, kAbs = 0x7fffffffu;  // non-finite: |bits| >= kExp
    const size_t words = (k + 63) / 64;
    for (size_t w = 0; w < words; ++w) bits[w] = 0;
    size_t p = 0;
    uint32_t top = 0;  // the largest |bit pattern| seen
#if defined(__AVX512F__)
    // whole words in a register (or-ing into memory per vector makes a store-forwarding chain). the
    // finiteness check is an unsigned max of the patterns on the integer units, which this loop leaves
    // idle.
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
    // as above, 8 floats per compare, gathered by movemask (these scans are every batch's: the scalar
    // loop below is far slower).
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
    // bits all set) or-ed into one flag vector.
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
// or-ed, one test per step: runs at memory speed, where the compiler's float loop does not.
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

// cols (IN, bw words): bit r of feature p set when row r's bitmap has bit p; features of the row-bitmap
// words [w0, w1). with avx2 (and so avx-512), a bit transpose, 32 rows x 64 features at a time: the
// rows' words, as a 32 x 8 byte matrix, are transposed to 8 vectors of 32 bytes (byte j of every row;
// bytes paired by pshufb, then an 8 x 8 transpose of 16-bit pairs), and bit b of those bytes, moved to
// the top, is one movemask: the 32-bit column word of feature 8j + b.
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
    // r0 + i's byte j, and after it byte b holds those rows' bits of feature 8j + b (rather than or-ing
    // each set bit into memory)
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

}  // namespace PYREG_ISA
}  // namespace pyreg

// dense.cpp: the dense layer on the kernel table (simd.h), each thread on the columns it owns.
#include "dense.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "parallel.h"
#include "simd.h"

namespace pyreg {

namespace {

inline float sigmoidf(float z) { return 1.0f / (1.0f + std::exp(-z)); }

// second-pass activations (sigmoid, tanh) over rows [i0, i1), columns [j0, j1).
void activation_region(float* y, size_t ld, size_t i0, size_t i1, size_t j0, size_t j1, Act act) {
    if (act != Act::sigmoid && act != Act::tanh) return;
    for (size_t i = i0; i < i1; ++i) {
        float* yr = y + i * ld;
        for (size_t j = j0; j < j1; ++j) yr[j] = act == Act::sigmoid ? sigmoidf(yr[j]) : std::tanh(yr[j]);
    }
}

// dz = dy * mask * scale * act'(y) over rows [i0, i1), columns [j0, j1) (vectorised kernel).
void act_backward_region(float* dz, const float* dy, const float* y, const uint8_t* mask, float scale, size_t ld,
                         size_t i0, size_t i1, size_t j0, size_t j1, Act act) {
    if (i1 <= i0 || j1 <= j0) return;
    const size_t o = i0 * ld;
    kernels().act_backward(i1 - i0, j0, j1, ld, dz + o, dy + o, y + o, mask ? mask + o : nullptr, scale, act);
}

Act fused(Act act) { return act == Act::relu ? Act::relu : Act::linear; }

// the columns p < k where any of rows [r0, r1) has a bit set, increasing; returns their count.
size_t union_of_rows(const uint64_t* bits, size_t words, size_t r0, size_t r1, size_t k, uint32_t* out) {
    size_t n = 0;
    for (size_t w = 0; w < words; ++w) {
        uint64_t u = 0;
        for (size_t r = r0; r < r1; ++r) u |= bits[r * words + w];
        while (u) {
            const size_t p = w * 64 + (size_t)__builtin_ctzll(u);
            if (p < k) out[n++] = (uint32_t)p;
            u &= u - 1;
        }
    }
    return n;
}

// the set bits of a (words)-word bitmap as increasing indices; returns their count.
size_t list_bits(const uint64_t* bits, size_t words, uint32_t* out) {
    size_t n = 0;
    for (size_t w = 0; w < words; ++w)
        for (uint64_t u = bits[w]; u; u &= u - 1) out[n++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(u));
    return n;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// forward

bool sparse_scan_rows(SparseInput sp, const float* const* xrows, size_t B, size_t IN) {
    const KernelTable& K = kernels();
    const size_t words = bit_words(IN);
    const Range r = my_units(B);
    bool bad = false;
    for (size_t b = r.begin; b < r.end; ++b) bad |= K.nonzero_bits(xrows[b], IN, sp.row_bits + b * words);
    return bad;
}

void sparse_scan_groups(SparseInput sp, size_t B, size_t IN) {
    // the groups of kFeatureGroup bits never straddle a 64-bit word: threads split the words.
    static_assert(64 % kFeatureGroup == 0, "feature groups must tile a 64-bit word");
    constexpr size_t per_word = 64 / kFeatureGroup;
    const size_t words = bit_words(IN), bw = bit_words(B), groups = (IN + kFeatureGroup - 1) / kFeatureGroup;
    uint64_t spread_mask = 0;  // the lowest bit of every group
    for (size_t g = 0; g < per_word; ++g) spread_mask |= 1ull << (g * kFeatureGroup);
    const Range r = my_units(words);
    for (size_t w = r.begin; w < r.end; ++w) {
        const size_t g0 = w * per_word, g1 = std::min(groups, g0 + per_word);
        for (size_t g = g0; g < g1; ++g) std::memset(sp.group_rows + g * bw, 0, bw * sizeof(uint64_t));
        for (size_t b = 0; b < B; ++b) {
            uint64_t x = sp.row_bits[b * words + w], any = x;
            for (size_t s = 1; s < kFeatureGroup; ++s) any |= x >> s;
            for (uint64_t u = any & spread_mask; u; u &= u - 1) {
                const size_t g = g0 + (size_t)__builtin_ctzll(u) / kFeatureGroup;
                sp.group_rows[g * bw + b / 64] |= 1ull << (b % 64);
            }
        }
    }
}

// the column blocks [p0, p1) this thread owns in an OUT-wide layer.
struct OwnedBlocks {
    size_t p0, p1, c0, c1;
};
inline OwnedBlocks owned_blocks(size_t OUT) {
    const Range c = owned_cols(OUT);
    if (c.begin == c.end) return {0, 0, 0, 0};  // this thread owns no column of a narrow layer
    return {c.begin / kColBlock, (c.end + kColBlock - 1) / kColBlock, c.begin, c.end};
}

void dense_forward(float* y, const float* const* xrows, Weights w, const float* b, size_t B, Act act) {
    const KernelTable& K = kernels();
    const OwnedBlocks o = owned_blocks(w.out);
    for (size_t p = o.p0; p < o.p1; ++p) {
        const size_t j0 = p * kColBlock;
        K.gemm_nn(B, w.width(p), w.in, xrows, nullptr, w.block(p), w.ld(p), b ? b + j0 : nullptr, fused(act), false,
                  y + j0, w.out);
    }
    activation_region(y, w.out, 0, B, o.c0, o.c1, act);
}

void dense_forward_sparse(float* y, SparseInput sp, const float* const* xrows, Weights w, const float* b, size_t B,
                          Act act) {
    const KernelTable& K = kernels();
    const OwnedBlocks o = owned_blocks(w.out);
    if (o.p0 == o.p1) return;
    const size_t IN = w.in, words = bit_words(IN);
    if (B <= kSparseChunkRows) {
        // features in chunks whose kernel rows stay in L1 while every row adds its non-zero inputs of
        // the chunk (the sweep's kernel, sweep.h): exact work; partial sums go through y, in order.
        constexpr size_t kChunk = 64;
        for (size_t p = o.p0; p < o.p1; ++p) {
            const size_t j0 = p * kColBlock;
            for (size_t f0 = 0;; f0 += kChunk) {  // at least one call: with no features y = act(bias)
                const size_t f1 = std::min(IN, f0 + kChunk);
                K.sparse_forward_chunk(B, w.width(p), f0, f1, sp.row_bits, words, xrows, w.block(p), w.ld(p),
                                       b ? b + j0 : nullptr, fused(act), f0 == 0, f1 == IN, y + j0, w.out);
                if (f1 == IN) break;
            }
        }
    } else {
        // many rows, read from memory once: the register-tiled gemm over each row tile's union of
        // non-zero columns streams every row once
        const size_t mr = (size_t)K.mr;
        uint32_t* kidx = sp.scratch + (size_t)team_rank() * sp.scratch_stride;
        for (size_t i0 = 0; i0 < B; i0 += mr) {
            const size_t i1 = std::min(B, i0 + mr);
            const size_t nk = union_of_rows(sp.row_bits, words, i0, i1, IN, kidx);
            for (size_t p = o.p0; p < o.p1; ++p) {
                const size_t j0 = p * kColBlock;
                K.gemm_nn(i1 - i0, w.width(p), nk, xrows + i0, kidx, w.block(p), w.ld(p), b ? b + j0 : nullptr,
                          fused(act), false, y + i0 * w.out + j0, w.out);
            }
        }
    }
    activation_region(y, w.out, 0, B, o.c0, o.c1, act);
}

// ---------------------------------------------------------------------------------------------
// backward

void bias_grad(float* db, const float* dz, size_t B, size_t OUT, size_t c0, size_t c1, bool accumulate) {
    if (!db) return;
    // 16 columns at a time, each summed over the rows in order: the compiler vectorises across the
    // columns (column by column, each sum would be a scalar chain)
    constexpr size_t kLanes = 16;
    for (size_t j0 = c0; j0 < c1; j0 += kLanes) {
        const size_t n = std::min(kLanes, c1 - j0);
        float s[kLanes] = {};
        for (size_t b = 0; b < B; ++b) {
            const float* row = dz + b * OUT + j0;
            for (size_t k = 0; k < n; ++k) s[k] += row[k];
        }
        for (size_t k = 0; k < n; ++k) db[j0 + k] = accumulate ? db[j0 + k] + s[k] : s[k];
    }
}

void activation_backward(float* dz, const float* dy, const float* y, const uint8_t* mask, float scale, size_t B,
                         size_t OUT, Act act) {
    const Range c = owned_cols(OUT);
    act_backward_region(dz, dy, y, mask, scale, OUT, 0, B, c.begin, c.end, act);
}

void dense_backward_params(WeightGrads dw, float* db, const float* dz, const float* const* xrows, size_t B,
                           bool accumulate) {
    const KernelTable& K = kernels();
    const OwnedBlocks o = owned_blocks(dw.out);
    for (size_t p = o.p0; p < o.p1; ++p)
        K.gemm_tn(dw.in, dw.width(p), B, xrows, 0, nullptr, dz + p * kColBlock, dw.out, accumulate, dw.block(p),
                  dw.ld(p));
    bias_grad(db, dz, B, dw.out, o.c0, o.c1, accumulate);
}

void dense_backward_params_sparse(WeightGrads dw, float* db, const float* dz, SparseInput sp,
                                  const float* const* xrows, size_t B, bool accumulate) {
    const KernelTable& K = kernels();
    const OwnedBlocks o = owned_blocks(dw.out);
    if (o.p0 == o.p1) return;
    const size_t IN = dw.in, bw = bit_words(B);
    uint32_t* kidx = sp.scratch + (size_t)team_rank() * sp.scratch_stride;
    for (size_t i0 = 0, g = 0; i0 < IN; i0 += kFeatureGroup, ++g) {
        const size_t i1 = std::min(IN, i0 + kFeatureGroup);
        const size_t nk = list_bits(sp.group_rows + g * bw, bw, kidx);  // batch rows non-zero in these features
        for (size_t p = o.p0; p < o.p1; ++p) {
            float* out = dw.block(p) + i0 * dw.ld(p);
            if (nk > 0)
                K.gemm_tn(i1 - i0, dw.width(p), nk, xrows, i0, kidx, dz + p * kColBlock, dw.out, accumulate, out,
                          dw.ld(p));
            else if (!accumulate)  // zero in every row of the batch: zero gradient
                for (size_t i = i0; i < i1; ++i) std::memset(out + (i - i0) * dw.ld(p), 0, dw.width(p) * sizeof(float));
        }
    }
    bias_grad(db, dz, B, dw.out, o.c0, o.c1, accumulate);
}

void dense_backward_input(float* dx, const float* const* dzrows, Weights w, float* wt, size_t B, bool accumulate,
                          const float* y_in, const uint8_t* mask_in, float scale_in, Act act_in) {
    // columns of dx: the layer below's outputs
    dense_backward_input_cols(owned_cols(w.in), dx, dzrows, w, wt, B, accumulate, y_in, mask_in, scale_in, act_in);
}

void dense_backward_input_cols(Range c, float* dx, const float* const* dzrows, Weights w, float* wt, size_t B,
                               bool accumulate, const float* y_in, const uint8_t* mask_in, float scale_in, Act act_in) {
    const size_t IN = w.in, OUT = w.out;
    if (c.end == c.begin) return;
    // wt (OUT, IN) = w^T for this thread's columns only: no other thread reads them.
    constexpr size_t T = 16;  // transposed in 16 x 16 tiles: both sides touch whole cache lines
    for (size_t p = 0; p < w.blocks(); ++p) {
        const float* blk = w.block(p);
        const size_t ld = w.ld(p), width = w.width(p), j0 = p * kColBlock;
        for (size_t i0 = c.begin; i0 < c.end; i0 += T)
            for (size_t k0 = 0; k0 < width; k0 += T) {
                const size_t i1 = std::min(c.end, i0 + T), k1 = std::min(width, k0 + T);
                for (size_t jj = k0; jj < k1; ++jj)
                    for (size_t i = i0; i < i1; ++i) wt[(j0 + jj) * IN + i] = blk[i * ld + jj];
            }
    }
    kernels().gemm_nn(B, c.end - c.begin, OUT, dzrows, nullptr, wt + c.begin, IN, nullptr, Act::linear, accumulate,
                      dx + c.begin, IN);
    // fused: the layer below's dropout mask and activation derivative, while the columns are hot.
    if (y_in) act_backward_region(dx, dx, y_in, mask_in, scale_in, IN, 0, B, c.begin, c.end, act_in);
}

void dense_forward_ref(float* y, const float* x, const float* w, const float* b, size_t B, size_t IN, size_t OUT,
                       Act act) {
    for (size_t i = 0; i < B; ++i)
        for (size_t j = 0; j < OUT; ++j) {
            float s = 0.0f;
            for (size_t p = 0; p < IN; ++p) s += x[i * IN + p] * w[p * OUT + j];
            s += b ? b[j] : 0.0f;
            if (act == Act::relu) s = s > 0.0f ? s : 0.0f;
            y[i * OUT + j] = s;
        }
    activation_region(y, OUT, 0, B, 0, OUT, act);
}

}  // namespace pyreg

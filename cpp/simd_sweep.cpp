// simd_sweep.cpp: the first layer's sweep kernels of the KernelTable (sweep.h): weight-gradient rows
// from a column-major sparsity map (sparse_weight_grad), the same fused with adam's update
// (sparse_grad_adam), and a chunk of features' contribution to the next batch's forward
// (sparse_forward_chunk). compiled once per instruction set (simd_isa.h).
//
// every sum runs in the same order as the gemm kernels' (simd_gemm.cpp: over increasing batch rows,
// over increasing features), and the update is simd_adam.h's, so results equal the unfused path's.
#include "simd_adam.h"

namespace pyreg {
namespace PYREG_ISA {

namespace {

inline size_t ctz64(uint64_t u) { return (size_t)__builtin_ctzll(u); }

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
// ymm accumulators of 16 (the gemm's tiles of 2 would walk every row 4 times); avx-512: 4 zmm;
// generic: the gemm's.
constexpr int SV = VW == 8 ? 8 : NV;

template <int V, bool PART>
struct WgradTile {
    static void run(size_t j, int nlast, size_t p0, size_t p1, const uint64_t* cols, size_t bw,
                    const float* const* xrows, const float* dz, size_t ldz, float* g, size_t ldg) {
        wgrad_tile<V, PART>(p0, p1, cols, bw, xrows, dz + j, ldz, g + j, ldg, nlast);
    }
};

}  // namespace

void sparse_weight_grad(size_t p0, size_t p1, size_t width, const uint64_t* cols, size_t bw, const float* const* xrows,
                        const float* dz, size_t ldz, float* g, size_t ldg) {
    over_column_tiles<SV, WgradTile>(width, p0, p1, cols, bw, xrows, dz, ldz, g, ldg);
}

namespace {

// the sweep's weight gradient and adam update fused, on one full panel (kColBlock columns, PV vectors):
// row p's gradient stays in registers and goes straight into adam_vector, so the divider's sqrt and
// division of row p overlap the next row's multiply-adds. the sums, the rows,
// the lane sums and their flushes run in sparse_weight_grad's and for_vectors' order: w, m, v and the
// penalty equal the two calls.
constexpr int PV = (int)(kColBlock / VW);
// NP panels per row walk: 2 where their 2 * PV accumulators fit the registers (avx-512: 8 zmm of 32),
// so a thread owning two panels (one thread on the study's 128 units) walks each row's set bits and
// inputs once. (the next batch's output stays per panel: 128-wide rows would no longer stay in L1.)
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

}  // namespace

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

namespace {

// rows of y, one column tile: y = (first ? 0 : y) + sum over the set features p in [p0, p1) of row r
// of x_r[p] * w(p, :), then the epilogue: none on all but the last chunk, there bias or bias_relu.
template <int V, bool PART>
struct ForwardTile {
    static void run(size_t j, int nlast, size_t rows, size_t p0, size_t p1, const uint64_t* bits, size_t words,
                    const float* const* xrows, const float* w, size_t ldw, const float* bias, Epilogue ep, bool first,
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
                if (ep != Epilogue::none) {  // the last chunk: the gemm's epilogue (tile_store), bias then relu
                    out = out + (bias ? lv(v, bias + j + v * VW) : vf{});
                    if (ep == Epilogue::bias_relu) out = vrelu(out);
                }
                if (PART && v == V - 1) vstoren(yr + v * VW, out, nlast);
                else vstore(yr + v * VW, out);
            }
        }
    }
};

}  // namespace

void sparse_forward_chunk(size_t rows, size_t width, size_t p0, size_t p1, const uint64_t* bits, size_t words,
                          const float* const* xrows, const float* w, size_t ldw, const float* bias, Act act,
                          bool first, bool last, float* y, size_t ldy) {
    const Epilogue ep = !last ? Epilogue::none : act == Act::relu ? Epilogue::bias_relu : Epilogue::bias;
    over_column_tiles<SV, ForwardTile>(width, rows, p0, p1, bits, words, xrows, w, ldw, bias, ep, first, y, ldy);
}

}  // namespace PYREG_ISA
}  // namespace pyreg

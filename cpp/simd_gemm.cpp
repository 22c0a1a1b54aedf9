// simd_gemm.cpp: the register-tiled matrix products of the KernelTable, gemm_nn (C = A . B, the
// forward pass and the input gradient) and gemm_tn (C = A^T . B, the weight gradient), with the
// sparse input's index lists. compiled once per instruction set (simd_isa.h).
//
// every output element is one sequential sum over p = 0..k-1, fused explicitly (vfma), so tiling
// and threading never change a result.
#include "simd_isa.h"

namespace pyreg {
namespace PYREG_ISA {

namespace {

// gemm register tile: acc (R, V vectors) = sum over p of A(r, p) * B(p, :); the last vector holds
// only `nlast` columns when PART. TA selects how A is read (see simd.h: gemm_nn vs gemm_tn).

template <int R, int V, bool TA, bool PART>
inline void tile_sum(size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx, const float* b,
                     size_t ldb, int nlast, vf (&out)[R][V]) {
    // a local tile, copied out at the end: accumulating straight into `out` lets gcc store the whole
    // tile to the stack on every step (it may alias the float loads below).
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

// c = acc + bias, relu(acc + bias) or c + acc (Epilogue bias, bias_relu, accumulate).
template <int R, int V, bool PART>
inline void tile_store(const vf (&acc)[R][V], const float* bias, Epilogue ep, float* c, size_t ldc, int nlast) {
    vf bv[V];
    for (int v = 0; v < V; ++v) {
        if (ep == Epilogue::accumulate || bias == nullptr) bv[v] = vf{};
        else bv[v] = (PART && v == V - 1) ? vloadn(bias + v * VW, nlast) : vload(bias + v * VW);
    }
    for (int r = 0; r < R; ++r) {
        float* cr = c + (size_t)r * ldc;
        for (int v = 0; v < V; ++v) {
            const bool part = PART && v == V - 1;
            vf out = acc[r][v] + bv[v];
            if (ep == Epilogue::bias_relu) out = vrelu(out);
            if (ep == Epilogue::accumulate) out = (part ? vloadn(cr + v * VW, nlast) : vload(cr + v * VW)) + acc[r][v];
            if (part) vstoren(cr + v * VW, out, nlast);
            else vstore(cr + v * VW, out);
        }
    }
}

template <int R, int V, bool TA, bool PART>
inline void tile(size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx, const float* b, size_t ldb,
                 const float* bias, Epilogue ep, float* c, size_t ldc, int nlast) {
    vf acc[R][V];
    tile_sum<R, V, TA, PART>(k, arows, a_off, kidx, b, ldb, nlast, acc);
    tile_store<R, V, PART>(acc, bias, ep, c, ldc, nlast);
}

// one row block of R rows across all n columns: full tiles of NV vectors, then the column tail.
template <int R, bool TA>
void row_block(size_t n, size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx, const float* b,
               size_t ldb, const float* bias, Epilogue ep, float* c, size_t ldc) {
    constexpr size_t NR = (size_t)NV * VW;
    size_t j = 0;
    for (; j + NR <= n; j += NR)
        tile<R, NV, TA, false>(k, arows, a_off, kidx, b + j, ldb, bias ? bias + j : nullptr, ep, c + j, ldc, VW);
    const size_t rem = n - j;
    if (rem == 0) return;
    const int nvec = (int)((rem + VW - 1) / VW);
    const int nlast = (int)(rem - (size_t)(nvec - 1) * VW);
    const float* bj = bias ? bias + j : nullptr;
    switch (nvec) {  // 1 <= nvec <= NV <= 4 on every isa
        case 1: tile<R, 1, TA, true>(k, arows, a_off, kidx, b + j, ldb, bj, ep, c + j, ldc, nlast); break;
        case 2: if constexpr (NV >= 2) tile<R, 2, TA, true>(k, arows, a_off, kidx, b + j, ldb, bj, ep, c + j, ldc, nlast); break;
        case 3: if constexpr (NV >= 3) tile<R, 3, TA, true>(k, arows, a_off, kidx, b + j, ldb, bj, ep, c + j, ldc, nlast); break;
        case 4: if constexpr (NV >= 4) tile<R, 4, TA, true>(k, arows, a_off, kidx, b + j, ldb, bj, ep, c + j, ldc, nlast); break;
        default: break;
    }
}

template <bool TA>
void gemm_rows(size_t m, size_t n, size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx,
               const float* b, size_t ldb, const float* bias, Epilogue ep, float* c, size_t ldc) {
    size_t i = 0;
    // NN: rows of C are rows of A (arows advances); TN: rows of C are columns of A (a_off advances).
    auto rows_at = [&](size_t i0) { return TA ? arows : arows + i0; };
    auto off_at = [&](size_t i0) { return TA ? a_off + i0 : (size_t)0; };
    for (; i + MR <= m; i += MR) row_block<MR, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, ep, c + i * ldc, ldc);
    switch (m - i) {
        case 0: break;
        case 1: row_block<1, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, ep, c + i * ldc, ldc); break;
        case 2: if constexpr (MR > 2) row_block<2, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, ep, c + i * ldc, ldc); break;
        case 3: if constexpr (MR > 3) row_block<3, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, ep, c + i * ldc, ldc); break;
        case 4: if constexpr (MR > 4) row_block<4, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, ep, c + i * ldc, ldc); break;
        case 5: if constexpr (MR > 5) row_block<5, TA>(n, k, rows_at(i), off_at(i), kidx, b, ldb, bias, ep, c + i * ldc, ldc); break;
        default: break;
    }
}

}  // namespace

void gemm_nn(size_t m, size_t n, size_t k, const float* const* arows, const uint32_t* kidx, const float* b,
             size_t ldb, const float* bias, Act act, bool accumulate, float* c, size_t ldc) {
    const Epilogue ep = accumulate ? Epilogue::accumulate : act == Act::relu ? Epilogue::bias_relu : Epilogue::bias;
    gemm_rows<false>(m, n, k, arows, 0, kidx, b, ldb, accumulate ? nullptr : bias, ep, c, ldc);
}

void gemm_tn(size_t m, size_t n, size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx,
             const float* b, size_t ldb, bool accumulate, float* c, size_t ldc) {
    const Epilogue ep = accumulate ? Epilogue::accumulate : Epilogue::bias;  // no bias: + 0
    gemm_rows<true>(m, n, k, arows, a_off, kidx, b, ldb, nullptr, ep, c, ldc);
}

}  // namespace PYREG_ISA
}  // namespace pyreg

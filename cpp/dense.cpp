// dense.cpp: the dense layer on the kernel table (simd.h), split into fixed work units.
#include "dense.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "parallel.h"
#include "simd.h"

namespace pyreg {

namespace {

// an (m, n) output cut into blocks of (rows, cols); unit u is block (u % nrb, u / nrb), so that
// consecutive units share a column block and a thread reads one slice of the weight.
struct Grid {
    size_t m, n, rows, cols, nrb, ncb;
    Grid(size_t m_, size_t n_, size_t rows_, size_t cols_)
        : m(m_), n(n_), rows(rows_), cols(cols_), nrb((m_ + rows_ - 1) / rows_), ncb((n_ + cols_ - 1) / cols_) {}
    size_t units() const { return nrb * ncb; }
    size_t i0(size_t u) const { return (u % nrb) * rows; }
    size_t i1(size_t u) const { return std::min(m, i0(u) + rows); }
    size_t j0(size_t u) const { return (u / nrb) * cols; }
    size_t j1(size_t u) const { return std::min(n, j0(u) + cols); }
};

inline float sigmoidf(float z) { return 1.0f / (1.0f + std::exp(-z)); }

void activation_region(float* y, size_t ld, size_t i0, size_t i1, size_t j0, size_t j1, Act act) {
    if (act != Act::sigmoid && act != Act::tanh) return;
    for (size_t i = i0; i < i1; ++i) {
        float* yr = y + i * ld;
        for (size_t j = j0; j < j1; ++j) yr[j] = act == Act::sigmoid ? sigmoidf(yr[j]) : std::tanh(yr[j]);
    }
}

// dz = dy * mask * scale * act'(y) over rows [i0, i1), columns [j0, j1).
void act_backward_region(float* dz, const float* dy, const float* y, const uint8_t* mask, float scale, size_t ld,
                         size_t i0, size_t i1, size_t j0, size_t j1, Act act) {
    for (size_t i = i0; i < i1; ++i) {
        const size_t o = i * ld;
        for (size_t j = j0; j < j1; ++j) {
            float d = dy[o + j];
            if (mask) d = mask[o + j] ? d * scale : 0.0f;
            const float yv = y[o + j];
            switch (act) {
                case Act::relu: d = yv > 0.0f ? d : 0.0f; break;
                case Act::sigmoid: d = d * (yv * (1.0f - yv)); break;
                case Act::tanh: d = d * (1.0f - yv * yv); break;
                default: break;
            }
            dz[o + j] = d;
        }
    }
}

// db (OUT) = (or +=) sum over b of dz (B, OUT); this thread's column share, summed in row order.
void bias_grad_share(float* db, const float* dz, size_t B, size_t OUT, bool accumulate) {
    if (!db) return;
    const Range r = split_range(OUT, team_rank(), team_size(), 16);
    for (size_t j = r.begin; j < r.end; ++j) {
        float s = 0.0f;
        for (size_t b = 0; b < B; ++b) s += dz[b * OUT + j];
        db[j] = accumulate ? db[j] + s : s;
    }
}

Act fused(Act act) { return act == Act::relu ? Act::relu : Act::linear; }

}  // namespace

void dense_forward(float* y, const float* const* xrows, const float* w, const float* b, size_t B, size_t IN,
                   size_t OUT, Act act) {
    const KernelTable& K = kernels();
    const Grid g(B, OUT, (size_t)K.mr, (size_t)K.nr);
    const Range r = my_units(g.units());
    for (size_t u = r.begin; u < r.end; ++u) {
        const size_t i0 = g.i0(u), i1 = g.i1(u), j0 = g.j0(u), j1 = g.j1(u);
        K.gemm_nn(i1 - i0, j1 - j0, IN, xrows + i0, w + j0, OUT, b ? b + j0 : nullptr, fused(act), false,
                  y + i0 * OUT + j0, OUT);
        activation_region(y, OUT, i0, i1, j0, j1, act);
    }
    team_barrier();
}

void dense_forward_sparse(float* y, SparseInput sp, const float* const* xrows, const float* w, const float* b,
                          size_t B, size_t IN, size_t OUT, Act act) {
    const KernelTable& K = kernels();
    const Range r = my_units(B);
    if (r.end > r.begin) {
        K.sparse_nn(r.end - r.begin, OUT, IN, xrows + r.begin, w, OUT, b, fused(act), y + r.begin * OUT, OUT,
                    sp.idx + r.begin * IN, sp.val + r.begin * IN, sp.cnt + r.begin);
        activation_region(y, OUT, r.begin, r.end, 0, OUT, act);
    }
    team_barrier();
}

void activation_backward(float* dz, const float* dy, const float* y, const uint8_t* mask, float scale, size_t B,
                         size_t OUT, Act act) {
    const Range r = my_units(B);
    act_backward_region(dz, dy, y, mask, scale, OUT, r.begin, r.end, 0, OUT, act);
    team_barrier();
}

void dense_backward_params(float* dw, float* db, const float* dz, const float* const* xrows, size_t B, size_t IN,
                           size_t OUT, bool accumulate) {
    const KernelTable& K = kernels();
    const Grid g(IN, OUT, (size_t)K.mr, (size_t)K.nr);
    const Range r = my_units(g.units());
    for (size_t u = r.begin; u < r.end; ++u) {
        const size_t i0 = g.i0(u), i1 = g.i1(u), j0 = g.j0(u), j1 = g.j1(u);
        K.gemm_tn(i1 - i0, j1 - j0, B, xrows, i0, dz + j0, OUT, accumulate, dw + i0 * OUT + j0, OUT);
    }
    bias_grad_share(db, dz, B, OUT, accumulate);
    team_barrier();
}

void dense_backward_params_sparse(float* dw, float* db, const float* dz, SparseInput sp, size_t B, size_t IN,
                                  size_t OUT, bool accumulate) {
    const KernelTable& K = kernels();
    // columns split between threads: each thread owns dw[:, j0:j1) and adds every non-zero's row.
    const Range r = split_range(OUT, team_rank(), team_size(), (size_t)K.vector_width);
    if (r.end > r.begin) {
        const size_t n = r.end - r.begin;
        if (!accumulate)
            for (size_t i = 0; i < IN; ++i) std::memset(dw + i * OUT + r.begin, 0, n * sizeof(float));
        K.sparse_tn(0, IN, n, B, IN, sp.idx, sp.val, sp.cnt, dz + r.begin, OUT, dw + r.begin, OUT);
    }
    bias_grad_share(db, dz, B, OUT, accumulate);
    team_barrier();
}

void dense_backward_input(float* dx, const float* const* dzrows, const float* w, float* wt, size_t B, size_t IN,
                          size_t OUT, bool accumulate, const float* y_in, const uint8_t* mask_in, float scale_in,
                          Act act_in) {
    const KernelTable& K = kernels();
    // wt (OUT, IN) = w^T, rows of w split between threads.
    const Range t = my_units(IN);
    for (size_t i = t.begin; i < t.end; ++i)
        for (size_t j = 0; j < OUT; ++j) wt[j * IN + i] = w[i * OUT + j];
    team_barrier();
    const Grid g(B, IN, (size_t)K.mr, (size_t)K.nr);
    const Range r = my_units(g.units());
    for (size_t u = r.begin; u < r.end; ++u) {
        const size_t i0 = g.i0(u), i1 = g.i1(u), j0 = g.j0(u), j1 = g.j1(u);
        K.gemm_nn(i1 - i0, j1 - j0, OUT, dzrows + i0, wt + j0, IN, nullptr, Act::linear, accumulate,
                  dx + i0 * IN + j0, IN);
        // fused: the previous layer's dropout mask and activation derivative, while the tile is hot.
        if (y_in) act_backward_region(dx, dx, y_in, mask_in, scale_in, IN, i0, i1, j0, j1, act_in);
    }
    team_barrier();
}

void activation_forward(float* y, size_t B, size_t OUT, Act act) {
    const Range r = my_units(B);
    activation_region(y, OUT, r.begin, r.end, 0, OUT, act);
    team_barrier();
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

// simd_adam.h: adam's update of one vector of parameters, and the helpers around it (the lane sums
// of the penalty, the 16 compiled variants), shared by the optimizer pass (simd_optim.cpp) and the
// sweep's fused gradient + update (simd_sweep.cpp), so the two compute the same float32 sequence.
// per instruction set, as simd_isa.h; included only by those two sources.
//
// exactly keras' float32 sequence of operations (docs/KERAS_SEMANTICS.md), on whole vectors; the
// tail is the same code on a partial vector. the penalty sums of the updated weights are kept per
// lane and added in lane order, so they depend only on the part's bounds, which the trainer fixes
// independently of the thread count.
#pragma once

#include <cstddef>
#include <utility>

#include "simd_isa.h"

namespace pyreg {
namespace PYREG_ISA {
namespace {

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
    // fewer per vector (the sums only report the loss, they never feed back into the weights)
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

}  // namespace

}  // namespace PYREG_ISA
}  // namespace pyreg

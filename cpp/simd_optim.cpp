// simd_optim.cpp: the optimizers' fused passes of the KernelTable: adam (and amsgrad) and sgd (with
// momentum, nesterov), each one pass over a block of the arena that updates w and the moments in
// place and sums the next step's penalty. exactly keras' float32 sequence of operations
// (docs/KERAS_SEMANTICS.md; adam's vector step: simd_adam.h). compiled once per instruction set
// (simd_isa.h).
#include "simd_adam.h"

namespace pyreg {
namespace PYREG_ISA {

namespace {

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

}  // namespace

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

}  // namespace PYREG_ISA
}  // namespace pyreg

// optim.cpp: per-step coefficients in float32 exactly as keras casts them, then the fused pass.
#include "optim.h"

#include <algorithm>
#include <cmath>

#include "parallel.h"
#include "simd.h"

namespace pyreg {

// keras computes these in the variable's dtype (float32): local_step, beta powers, alpha. python-side
// constants such as 1 - beta_1 are doubles rounded to float32 when they meet a float32 tensor.
OptCoef step_coefficients(const OptimizerConfig& cfg, int64_t iterations) {
    OptCoef c{};
    const float lr = cfg.schedule.active() ? cfg.schedule.lr_at(iterations) : (float)cfg.learning_rate;
    if (cfg.kind == OptKind::adam) {
        const float t = (float)(iterations + 1);
        const float b1p = std::pow((float)cfg.beta_1, t);
        const float b2p = std::pow((float)cfg.beta_2, t);
        c.alpha = lr * std::sqrt(1.0f - b2p) / (1.0f - b1p);
        c.one_minus_beta_1 = (float)(1.0 - cfg.beta_1);
        c.one_minus_beta_2 = (float)(1.0 - cfg.beta_2);
        c.epsilon = (float)cfg.epsilon;
    }
    c.lr = lr;
    c.momentum = (float)cfg.momentum;
    c.nesterov = cfg.nesterov;
    c.wd = (float)cfg.weight_decay;
    c.wd_lr = lr;
    return c;
}

OptCoef segment_coef(const OptCoef& coef, const Segment& seg) {
    OptCoef c = coef;
    c.l1 = seg.l1;
    c.l2 = seg.l2;
    if (!seg.decay) c.wd = 0.0f;
    return c;
}

void update_rows(const OptimizerConfig& cfg, const OptCoef& coef, const Segment& seg, float* w, const float* g_rows,
                 OptimizerState st, size_t r0, size_t r1, double* sum_sq, double* sum_abs) {
    const KernelTable& K = kernels();
    const OptCoef c = segment_coef(coef, seg);
    // the rows are contiguous (row stride cols): one flat run of full vectors (row by row, a narrow
    // segment such as the study's 128 x 10 output kernel would take a masked vector per row).
    // for widths that are multiples of the vector width the lanes, and so the penalty's sums, are the same.
    const size_t o = seg.offset + r0 * seg.cols, n = (r1 - r0) * seg.cols;
    if (cfg.kind == OptKind::adam)
        K.adam(1, n, n, w + o, g_rows, st.m + o, st.v + o, st.vhat ? st.vhat + o : nullptr, c, sum_sq, sum_abs);
    else
        K.sgd(1, n, n, w + o, g_rows, st.m ? st.m + o : nullptr, c, sum_sq, sum_abs);
}

void optimizer_step(const OptimizerConfig& cfg, const OptCoef& coef, const std::vector<Segment>& segments, float* w,
                    const float* g, OptimizerState st, double* penalty_segments, long skip_layer) {
    for (size_t s = 0; s < segments.size(); ++s) {
        const Segment& seg = segments[s];
        if ((long)seg.layer == skip_layer) continue;
        const Range mine = owned_cols(seg.layer_width);
        if (seg.owner_col < mine.begin || seg.owner_col >= mine.end) continue;  // another thread's columns
        double sq = 0.0, ab = 0.0;
        for (size_t r = 0; r < seg.rows; r += kOptRows) {
            const size_t r1 = std::min(seg.rows, r + kOptRows);
            update_rows(cfg, coef, seg, w, g + seg.offset + r * seg.cols, st, r, r1, &sq, &ab);
        }
        penalty_segments[s] = segment_penalty(seg, sq, ab);
    }
}

void optimizer_step_flat(const OptimizerConfig& cfg, int64_t iterations, size_t n, float* w, const float* g,
                         OptimizerState st, float l1, float l2) {
    const KernelTable& K = kernels();
    OptCoef c = step_coefficients(cfg, iterations);
    c.l1 = l1;
    c.l2 = l2;
    const Range r = split_range(n, team_rank(), team_size(), kColBlock);
    if (r.end == r.begin) return;
    const size_t o = r.begin, len = r.end - r.begin;
    double sq = 0.0, ab = 0.0;
    if (cfg.kind == OptKind::adam)
        K.adam(1, len, len, w + o, g + o, st.m + o, st.v + o, st.vhat ? st.vhat + o : nullptr, c, &sq, &ab);
    else
        K.sgd(1, len, len, w + o, g + o, st.m ? st.m + o : nullptr, c, &sq, &ab);
}

double penalty(const std::vector<Segment>& segments, const float* w) {
    double total = 0.0;
    for (const Segment& seg : segments) {
        if (seg.l1 == 0.0f && seg.l2 == 0.0f) continue;
        double sq = 0.0, ab = 0.0;
        for (size_t i = seg.offset; i < seg.offset + seg.size(); ++i) {
            const double x = w[i];
            sq += x * x;
            ab += std::fabs(x);
        }
        total += (double)seg.l1 * ab + (double)seg.l2 * sq;
    }
    return total;
}

void adam_update_ref(float* w, const float* g, float* m, float* v, size_t n, int64_t iterations,
                     const OptimizerConfig& cfg, float l1, float l2) {
    const OptCoef c = step_coefficients(cfg, iterations);
    for (size_t i = 0; i < n; ++i) {
        float gi = g[i] + (2.0f * l2 * w[i] + l1 * (float)((w[i] > 0.0f) - (w[i] < 0.0f)));
        float wi = w[i];
        if (c.wd != 0.0f) wi = wi - wi * c.wd * c.wd_lr;
        m[i] = m[i] + (gi - m[i]) * c.one_minus_beta_1;
        v[i] = v[i] + (gi * gi - v[i]) * c.one_minus_beta_2;
        w[i] = wi - (m[i] * c.alpha) / (std::sqrt(v[i]) + c.epsilon);
    }
}

}  // namespace pyreg

// optim.cpp: per-step coefficients in float32 exactly as keras casts them, then the fused pass.
#include "optim.h"

#include <algorithm>
#include <cmath>

#include "parallel.h"
#include "simd.h"

namespace pyreg {

namespace {

// keras computes these in the variable's dtype (float32): local_step, beta powers, alpha. python-side
// constants such as 1 - beta_1 are doubles rounded to float32 when they meet a float32 tensor.
OptCoef coefficients(const OptimizerConfig& cfg, int64_t iterations) {
    OptCoef c{};
    const float lr = (float)cfg.learning_rate;
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

}  // namespace

std::vector<Chunk> make_chunks(const std::vector<Segment>& segments, size_t chunk) {
    std::vector<Chunk> out;
    for (uint32_t s = 0; s < (uint32_t)segments.size(); ++s)
        for (size_t o = 0; o < segments[s].size; o += chunk)
            out.push_back({s, segments[s].offset + o, std::min(chunk, segments[s].size - o)});
    return out;
}

void optimizer_step(const OptimizerConfig& cfg, int64_t iterations, const std::vector<Segment>& segments,
                    const std::vector<Chunk>& chunks, float* w, const float* g, OptimizerState st,
                    double* penalty_chunks) {
    const KernelTable& K = kernels();
    const OptCoef base = coefficients(cfg, iterations);
    for (size_t u = 0; u < chunks.size(); ++u) {
        const Chunk& ch = chunks[u];
        const Segment& seg = segments[ch.segment];
        const Range mine = owned_cols(seg.layer_width);
        if (seg.owner_col < mine.begin || seg.owner_col >= mine.end) continue;  // another thread's columns
        OptCoef c = base;
        c.l1 = seg.l1;
        c.l2 = seg.l2;
        if (!seg.decay) c.wd = 0.0f;
        const size_t o = ch.offset, n = ch.size;
        double sq = 0.0, ab = 0.0;
        if (cfg.kind == OptKind::adam)
            K.adam(1, n, n, w + o, g + o, st.m + o, st.v + o, st.vhat ? st.vhat + o : nullptr, c, &sq, &ab);
        else
            K.sgd(1, n, n, w + o, g + o, st.m ? st.m + o : nullptr, c, &sq, &ab);
        penalty_chunks[u] = (double)seg.l1 * ab + (double)seg.l2 * sq;
    }
}

void optimizer_step_flat(const OptimizerConfig& cfg, int64_t iterations, size_t n, float* w, const float* g,
                         OptimizerState st, float l1, float l2) {
    const KernelTable& K = kernels();
    OptCoef c = coefficients(cfg, iterations);
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

double penalty(const std::vector<Segment>& segments, const std::vector<Chunk>& chunks, const float* w) {
    double total = 0.0;
    for (const Chunk& ch : chunks) {
        const Segment& seg = segments[ch.segment];
        if (seg.l1 == 0.0f && seg.l2 == 0.0f) continue;
        double sq = 0.0, ab = 0.0;
        for (size_t i = ch.offset; i < ch.offset + ch.size; ++i) {
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
    const OptCoef c = coefficients(cfg, iterations);
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

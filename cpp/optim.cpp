// optim.cpp: per-step coefficients in float32 exactly as keras casts them, then the fused pass.
#include "optim.h"

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
        for (size_t o = 0; o < segments[s].size; o += chunk) {
            const size_t n = segments[s].size - o < chunk ? segments[s].size - o : chunk;
            out.push_back({segments[s].offset + o, n, s});
        }
    return out;
}

void optimizer_step(const OptimizerConfig& cfg, int64_t iterations, const std::vector<Segment>& segments,
                    const std::vector<Chunk>& chunks, float* w, const float* g, OptimizerState st,
                    double* penalty_chunks) {
    const KernelTable& K = kernels();
    const OptCoef base = coefficients(cfg, iterations);
    const Range r = my_units(chunks.size());
    for (size_t u = r.begin; u < r.end; ++u) {
        const Chunk& ch = chunks[u];
        const Segment& seg = segments[ch.segment];
        OptCoef c = base;
        c.l1 = seg.l1;
        c.l2 = seg.l2;
        if (!seg.decay) c.wd = 0.0f;
        const size_t o = ch.offset;
        double sq = 0.0, ab = 0.0;
        if (cfg.kind == OptKind::adam)
            K.adam(ch.size, w + o, g + o, st.m + o, st.v + o, st.vhat ? st.vhat + o : nullptr, c, &sq, &ab);
        else
            K.sgd(ch.size, w + o, g + o, st.m ? st.m + o : nullptr, c, &sq, &ab);
        penalty_chunks[u] = (double)seg.l1 * ab + (double)seg.l2 * sq;
    }
    team_barrier();
}

double penalty(const std::vector<Segment>& segments, const std::vector<Chunk>& chunks, const float* w) {
    double total = 0.0;
    for (const Chunk& ch : chunks) {
        const Segment& seg = segments[ch.segment];
        if (seg.l1 == 0.0f && seg.l2 == 0.0f) continue;
        double sq = 0.0, ab = 0.0;
        for (size_t i = ch.offset; i < ch.offset + ch.size; ++i) {
            sq += (double)w[i] * w[i];
            ab += std::fabs((double)w[i]);
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

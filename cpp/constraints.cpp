// constraints.cpp: weight constraints and the activity penalty (constraints.h).
#include "constraints.h"

#include <algorithm>
#include <cmath>

#include "dense.h"

namespace pyreg {

namespace {

constexpr float kEps = 1e-7f;  // keras.backend.epsilon(), as float32

inline float clip(float x, float lo, float hi) { return std::max(std::min(x, hi), lo); }

// the factor desired / (eps + n) of max_norm and min_max_norm, in keras' order.
inline float norm_factor(const ConstraintSpec& s, float n) {
    float desired;
    if (s.kind == ConstraintKind::max_norm) desired = clip(n, 0.0f, s.max_value);
    else desired = s.rate * clip(n, s.min_value, s.max_value) + s.one_minus_rate * n;
    return desired / (kEps + n);
}

// w[i * stride] for i < count, constrained as one norm group with the (float32) squared norm sq.
inline void apply_group(const ConstraintSpec& s, float* w, size_t count, size_t stride, float sq) {
    const float n = std::sqrt(sq);
    if (s.kind == ConstraintKind::unit_norm) {
        const float d = kEps + n;
        for (size_t i = 0; i < count; ++i) w[i * stride] = w[i * stride] / d;
        return;
    }
    const float f = norm_factor(s, n);
    for (size_t i = 0; i < count; ++i) w[i * stride] = w[i * stride] * f;
}

inline void non_neg(float* w, size_t n) {
    for (size_t i = 0; i < n; ++i) w[i] = std::max(w[i], 0.0f);
}

// the address of element (i, j) of a panel-stored (IN, OUT) kernel.
inline float* at(float* k, size_t IN, size_t OUT, size_t i, size_t j) {
    const size_t p0 = j / kColBlock * kColBlock, width = std::min(kColBlock, OUT - p0);
    return k + p0 * IN + i * width + (j - p0);
}

}  // namespace

void constrain_kernel_cols(const ConstraintSpec& s, float* k, size_t IN, size_t OUT, Range c) {
    if (!s.active() || c.end <= c.begin) return;
    for (size_t p0 = c.begin / kColBlock * kColBlock; p0 < c.end; p0 += kColBlock) {
        const size_t width = std::min(kColBlock, OUT - p0);
        float* panel = k + p0 * IN;  // row-major (IN, width)
        const size_t j0 = std::max(c.begin, p0) - p0, j1 = std::min(c.end, p0 + width) - p0;
        if (s.kind == ConstraintKind::non_neg) {
            for (size_t i = 0; i < IN; ++i) non_neg(panel + i * width + j0, j1 - j0);
            continue;
        }
        float sq[kColBlock];
        for (size_t j = j0; j < j1; ++j) sq[j] = 0.0f;
        for (size_t i = 0; i < IN; ++i) {  // each column's sum in row order
            const float* row = panel + i * width;
            for (size_t j = j0; j < j1; ++j) sq[j] += row[j] * row[j];
        }
        for (size_t j = j0; j < j1; ++j) apply_group(s, panel + j, IN, width, sq[j]);
    }
}

void constrain_kernel(const ConstraintSpec& s, float* k, size_t IN, size_t OUT) {
    if (!s.active()) return;
    if (s.per_column()) {
        constrain_kernel_cols(s, k, IN, OUT, {0, OUT});
        return;
    }
    if (s.axis == NormAxis::rows) {
        for (size_t i = 0; i < IN; ++i) {
            float sq = 0.0f;
            for (size_t j = 0; j < OUT; ++j) {
                const float x = *at(k, IN, OUT, i, j);
                sq += x * x;
            }
            const float n = std::sqrt(sq);
            const float d = kEps + n, f = s.kind == ConstraintKind::unit_norm ? 0.0f : norm_factor(s, n);
            for (size_t j = 0; j < OUT; ++j) {
                float* x = at(k, IN, OUT, i, j);
                *x = s.kind == ConstraintKind::unit_norm ? *x / d : *x * f;
            }
        }
        return;
    }
    float sq = 0.0f;  // the whole kernel, in keras' row-major order
    for (size_t i = 0; i < IN; ++i)
        for (size_t j = 0; j < OUT; ++j) {
            const float x = *at(k, IN, OUT, i, j);
            sq += x * x;
        }
    // every panel is one contiguous block: the group's factor applies to each in turn
    const float n = std::sqrt(sq);
    for (size_t p0 = 0; p0 < OUT; p0 += kColBlock) {
        const size_t width = std::min(kColBlock, OUT - p0);
        float* panel = k + p0 * IN;
        if (s.kind == ConstraintKind::unit_norm)
            for (size_t i = 0; i < IN * width; ++i) panel[i] = panel[i] / (kEps + n);
        else {
            const float f = norm_factor(s, n);
            for (size_t i = 0; i < IN * width; ++i) panel[i] = panel[i] * f;
        }
    }
}

void constrain_vector(const ConstraintSpec& s, float* w, size_t n) {
    if (!s.active()) return;
    if (s.kind == ConstraintKind::non_neg) {
        non_neg(w, n);
        return;
    }
    float sq = 0.0f;
    for (size_t i = 0; i < n; ++i) sq += w[i] * w[i];
    apply_group(s, w, n, 1, sq);
}

double activity_row_penalty(const float* y, size_t n, float l1, float l2) {
    double ab = 0.0, sq = 0.0;
    for (size_t j = 0; j < n; ++j) {
        const double v = y[j];
        ab += std::fabs(v);
        sq += v * v;
    }
    return (double)l1 * ab + (double)l2 * sq;
}

void add_activity_grad(float* dz, const float* y, size_t rows, size_t OUT, Range c, Act act, float l1, float l2,
                       size_t B) {
    const float inv_b = 1.0f / (float)B;
    const float c1 = inv_b * l1, c2 = inv_b * l2;
    for (size_t r = 0; r < rows; ++r) {
        const float* yr = y + r * OUT;
        float* d = dz + r * OUT;
        for (size_t j = c.begin; j < c.end; ++j) {
            const float v = yr[j];
            float g = 0.0f;
            if (l2 != 0.0f) g = c2 * (2.0f * v);
            if (l1 != 0.0f) g = g + c1 * (float)((v > 0.0f) - (v < 0.0f));
            float da;
            switch (act) {
                case Act::relu: da = v > 0.0f ? 1.0f : 0.0f; break;
                case Act::sigmoid: da = v * (1.0f - v); break;
                case Act::tanh: da = 1.0f - v * v; break;
                default: da = 1.0f; break;
            }
            d[j] = d[j] + g * da;
        }
    }
}

}  // namespace pyreg

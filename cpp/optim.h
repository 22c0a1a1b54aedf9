// optim.h: the optimizer step over the whole parameter arena, one fused pass, team-aware.
//
// keras 3 semantics (docs/KERAS_SEMANTICS.md, keras/src/optimizers/{adam,sgd,base_optimizer}.py):
//   g      += l1 * sign(w) + 2 * l2 * w          coupled: the l1/l2 regularizer's gradient (part of the loss)
//   w      -= w * weight_decay * lr              decoupled: optimizer weight_decay (adamw), before the step
//   adam    t = iterations + 1; alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
//           m += (g - m) * (1 - beta_1); v += (g*g - v) * (1 - beta_2); [amsgrad: vhat = max(vhat, v)]
//           w -= m * alpha / (sqrt(v) + epsilon)
//   sgd     m = m * momentum - g * lr; w += m   (nesterov: w += m * momentum - g * lr); no momentum: w -= g * lr
// the arena is cut into segments (kernel panels, bias blocks); a segment is updated by the thread
// that owns its columns, always in the same order, so every result is the same for any thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "schedule.h"
#include "simd.h"

namespace pyreg {

enum class OptKind : int { adam = 0, sgd = 1 };

struct OptimizerConfig {
    OptKind kind = OptKind::adam;
    double learning_rate = 1e-3;
    double beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7;
    bool amsgrad = false;
    double momentum = 0.0;
    bool nesterov = false;
    double weight_decay = 0.0;  // decoupled; 0 = off
    // a learning-rate schedule (schedule.h): when active, step k's lr is schedule.lr_at(k) instead of
    // learning_rate, for the update and the decoupled decay alike.
    LrSchedule schedule;
};

// a contiguous part of the arena with one regularisation setting and one owner: a column panel of a
// layer's kernel (rows = IN, cols = its width), or a column block of its bias (one row). its owner is
// the thread that owns column owner_col of a layer_width-wide layer (parallel.h), the same thread that
// computes its gradient.
struct Segment {
    size_t offset, rows, cols;  // rows * cols parameters, row-major, row stride cols
    float l1, l2;
    bool decay;  // decoupled weight decay applies (keras applies it to every trainable variable)
    size_t owner_col, layer_width, layer;
    bool is_bias;
    size_t size() const { return rows * cols; }
};

// rows per optimizer call: a segment is updated in calls of kOptRows rows, so the trainer's fused
// first-layer sweep (sweep.h), which updates kOptRows rows at a time, sums the same penalty.
constexpr size_t kOptRows = 64;

// optimizer state arrays, each (P), laid out like the parameter arena; null when unused.
struct OptimizerState {
    float* m = nullptr;     // adam first moment, sgd momentum
    float* v = nullptr;     // adam second moment
    float* vhat = nullptr;  // amsgrad max of v
};

// the step's coefficients in float32 exactly as keras casts them (iterations = steps taken so far).
OptCoef step_coefficients(const OptimizerConfig& cfg, int64_t iterations);

// the step's coefficients for one segment: its regularisation, and decoupled decay only where it applies.
OptCoef segment_coef(const OptCoef& coef, const Segment& seg);

// updates rows [r0, r1) of segment seg, whose gradient rows start at g_rows (row stride seg.cols; the
// arena itself or a scratch buffer); w and the state share the arena layout. adds sum(w^2) and
// sum(|w|) of the updated values to *sum_sq and *sum_abs (see KernelTable::adam).
void update_rows(const OptimizerConfig& cfg, const OptCoef& coef, const Segment& seg, float* w, const float* g_rows,
                 OptimizerState st, size_t r0, size_t r1, double* sum_sq, double* sum_abs);
// a segment's penalty from its sums.
inline double segment_penalty(const Segment& seg, double sum_sq, double sum_abs) {
    return (double)seg.l1 * sum_abs + (double)seg.l2 * sum_sq;
}

// one step over every segment this thread owns (but those of layer skip_layer; -1: none), kOptRows
// rows per call; penalty_segments[s] gets segment s's penalty, the same for any thread count.
// team-aware, no barrier.
void optimizer_step(const OptimizerConfig& cfg, const OptCoef& coef, const std::vector<Segment>& segments, float* w,
                    const float* g, OptimizerState st, double* penalty_segments, long skip_layer = -1);

// one step on a flat array of n parameters with one regularisation setting (the standalone kernel):
// threads split [0, n) in whole vectors. team-aware, no barrier.
void optimizer_step_flat(const OptimizerConfig& cfg, int64_t iterations, size_t n, float* w, const float* g,
                         OptimizerState st, float l1, float l2);

// the regularisation penalty of w: sum over segments of l1*sum|w| + l2*sum(w^2) (double precision;
// used at the start of an epoch and for evaluate).
double penalty(const std::vector<Segment>& segments, const float* w);

// the naive reference of one adam step on n parameters (one thread, scalar): for tests.
void adam_update_ref(float* w, const float* g, float* m, float* v, size_t n, int64_t iterations,
                     const OptimizerConfig& cfg, float l1, float l2);

}  // namespace pyreg

// optim.h: the optimizer step over the whole parameter arena, one fused pass, team-aware.
//
// keras 3 semantics (../shared/KERAS_SEMANTICS.md, keras/src/optimizers/{adam,sgd,base_optimizer}.py):
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
};

// a contiguous part of the arena with one regularisation setting and one owner: a column panel of a
// layer's kernel, or a column block of its bias. its owner is the thread that owns column owner_col
// of a layer_width-wide layer (parallel.h), the same thread that computes its gradient.
struct Segment {
    size_t offset, size;
    float l1, l2;
    bool decay;  // decoupled weight decay applies (keras applies it to every trainable variable)
    size_t owner_col, layer_width;
};

// optimizer state arrays, each (P), laid out like the parameter arena; null when unused.
struct OptimizerState {
    float* m = nullptr;     // adam first moment, sgd momentum
    float* v = nullptr;     // adam second moment
    float* vhat = nullptr;  // amsgrad max of v
};

// the step's coefficients in float32 exactly as keras casts them (iterations = steps taken so far).
OptCoef step_coefficients(const OptimizerConfig& cfg, int64_t iterations);

// updates n parameters at offset o of segment seg (w, g and the state share the arena layout);
// returns the penalty l1*sum|w| + l2*sum(w^2) of the updated values.
double update_block(const OptimizerConfig& cfg, const OptCoef& coef, const Segment& seg, float* w, const float* g,
                    OptimizerState st, size_t o, size_t n);

// one step over every segment this thread owns, in chunks of `chunk` parameters;
// penalty_segments[s] gets segment s's penalty (its chunks summed in order), so it is the same for
// any thread count. team-aware, no barrier.
void optimizer_step(const OptimizerConfig& cfg, const OptCoef& coef, const std::vector<Segment>& segments, float* w,
                    const float* g, OptimizerState st, double* penalty_segments, size_t chunk = 8192);

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

// optim.h: the optimizer step over the whole parameter arena, one fused pass, team-aware.
//
// keras 3 semantics (../shared/KERAS_SEMANTICS.md, keras/src/optimizers/{adam,sgd,base_optimizer}.py):
//   g      += l1 * sign(w) + 2 * l2 * w          coupled: the l1/l2 regularizer's gradient (part of the loss)
//   w      -= w * weight_decay * lr              decoupled: optimizer weight_decay (adamw), before the step
//   adam    t = iterations + 1; alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
//           m += (g - m) * (1 - beta_1); v += (g*g - v) * (1 - beta_2); [amsgrad: vhat = max(vhat, v)]
//           w -= m * alpha / (sqrt(v) + epsilon)
//   sgd     m = m * momentum - g * lr; w += m   (nesterov: w += m * momentum - g * lr); no momentum: w -= g * lr
// the arena is cut into fixed chunks inside each segment (a kernel or a bias), so the per-chunk
// penalty sums, and so everything, are the same for any thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

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

// a part of the arena with one regularisation setting: a layer's kernel or its bias.
struct Segment {
    size_t offset, size;
    float l1, l2;
    bool decay;  // decoupled weight decay applies (keras applies it to every trainable variable)
};

struct Chunk {
    size_t offset, size;
    uint32_t segment;
};

// cuts segments into chunks of at most `chunk` parameters (a multiple of 64).
std::vector<Chunk> make_chunks(const std::vector<Segment>& segments, size_t chunk = 8192);

// optimizer state arrays, each (P), laid out like the parameter arena; null when unused.
struct OptimizerState {
    float* m = nullptr;     // adam first moment, sgd momentum
    float* v = nullptr;     // adam second moment
    float* vhat = nullptr;  // amsgrad max of v
};

// one step: w (P) updated from g (P) with iteration count `iterations` (0 on the first step).
// penalty_chunks (chunks) gets each chunk's l1*sum|w| + l2*sum(w^2) of the updated weights.
// team-aware, ends with a barrier.
void optimizer_step(const OptimizerConfig& cfg, int64_t iterations, const std::vector<Segment>& segments,
                    const std::vector<Chunk>& chunks, float* w, const float* g, OptimizerState st,
                    double* penalty_chunks);

// the regularisation penalty of w: sum over segments of l1*sum|w| + l2*sum(w^2), in chunk order.
double penalty(const std::vector<Segment>& segments, const std::vector<Chunk>& chunks, const float* w);

// the naive reference of one adam step on n parameters (one thread, scalar): for tests.
void adam_update_ref(float* w, const float* g, float* m, float* v, size_t n, int64_t iterations,
                     const OptimizerConfig& cfg, float l1, float l2);

}  // namespace pyreg

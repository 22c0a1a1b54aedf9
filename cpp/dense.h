// dense.h: the dense layer, forward and backward, fused with its activation; team-aware (parallel.h).
//
//   forward   y (B, OUT) = act(x (B, IN) . w (IN, OUT) + b (OUT))       act: linear or relu fused in
//             the gemm epilogue; sigmoid and tanh in a second pass; softmax belongs to loss.h.
//   backward  dz (B, OUT) = dy * act'(y)                                   (act'(y) from the output)
//             dw (IN, OUT) = x^T . dz,  db (OUT) = sum_b dz,  dx (B, IN) = dz . w^T
//
// x is read through row pointers (xrows[b] -> IN floats) so the trainer can feed data-set rows in a
// shuffled order without copying them. The sparse-input variant skips zero inputs (MNIST pixels are
// 81% zero) and records them for its weight gradient; both variants sum in the same order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.h"

namespace pyreg {

// the non-zeros of one batch of inputs, written by the sparse forward and read by its backward.
struct SparseInput {
    uint32_t* idx;  // (B, IN) capacity: row b's non-zero column indices at idx + b*IN, increasing
    float* val;     // (B, IN) their values
    uint32_t* cnt;  // (B) how many non-zeros row b has
};

// y (B, OUT) overwritten. team-aware, ends with a barrier.
void dense_forward(float* y, const float* const* xrows, const float* w, const float* b, size_t B, size_t IN,
                   size_t OUT, Act act);
// as dense_forward, skipping zero inputs and recording them in sp.
void dense_forward_sparse(float* y, SparseInput sp, const float* const* xrows, const float* w, const float* b,
                          size_t B, size_t IN, size_t OUT, Act act);

// dz (B, OUT) = dy * act'(y); in place when dz == dy. mask (B, OUT) optional: dropout keep-mask applied
// to dy first, with `scale` (= 1/(1-rate)). team-aware, ends with a barrier.
void activation_backward(float* dz, const float* dy, const float* y, const uint8_t* mask, float scale, size_t B,
                         size_t OUT, Act act);

// the parameter gradients from dz: dw (IN, OUT) and db (OUT), overwritten or accumulated.
// team-aware, ends with a barrier.
void dense_backward_params(float* dw, float* db, const float* dz, const float* const* xrows, size_t B, size_t IN,
                           size_t OUT, bool accumulate);
// the same for the sparse-input forward: dw rows with no non-zero in the batch get zero (or nothing
// added when accumulating).
void dense_backward_params_sparse(float* dw, float* db, const float* dz, SparseInput sp, size_t B, size_t IN,
                                  size_t OUT, bool accumulate);

// dx (B, IN) = dz . w^T, overwritten or accumulated; dz is read through row pointers dzrows[b].
// wt (OUT, IN) is scratch for w's transpose. When y_in is given, dx is then turned into the previous
// layer's dz in place: dx * mask_in * scale_in * act_in'(y_in) (see activation_backward).
// team-aware, ends with a barrier.
void dense_backward_input(float* dx, const float* const* dzrows, const float* w, float* wt, size_t B, size_t IN,
                          size_t OUT, bool accumulate, const float* y_in = nullptr, const uint8_t* mask_in = nullptr,
                          float scale_in = 1.0f, Act act_in = Act::linear);

// a second pass for activations not fused into the gemm: y = act(y) in place (sigmoid, tanh).
void activation_forward(float* y, size_t B, size_t OUT, Act act);

// the naive reference (one thread, triple loop, float accumulation in the same order): for tests.
void dense_forward_ref(float* y, const float* x, const float* w, const float* b, size_t B, size_t IN, size_t OUT,
                       Act act);

}  // namespace pyreg

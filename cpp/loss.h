// loss.h: fused softmax + sparse categorical cross-entropy, as keras computes it from the logits
// behind a softmax output (tf.nn.sparse_softmax_cross_entropy_with_logits), team-aware.
//
//   per row b:  lse = max(z) + log(sum_k exp(z_k - max(z)))      z = logits[b] (K)
//               loss[b] = lse - z[label]
//               correct[b] = argmax(z) == label   (first maximum, as argmax does)
//               dz[b] = (softmax(z) - onehot(label)) * grad_scale     (grad_scale = 1/B for a mean)
// with label smoothing ls > 0 (categorical cross-entropy, tf.nn.softmax_cross_entropy_with_logits):
//               y'_k = onehot_k * (1 - ls) + ls / K     (float32, as keras casts them)
//               loss[b] = sum_k y'_k * (lse - z_k);  dz[b] = (softmax(z) - y') * grad_scale
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.h"

namespace pyreg {

// loss_rows (B) and correct_rows (B) overwritten; dlogits (B, K) overwritten unless null.
// labels must be in [0, K) (checked by callers). team-aware (rows split), no barrier.
void softmax_xent(float* dlogits, float* loss_rows, uint8_t* correct_rows, const float* logits, const int32_t* labels,
                  size_t B, size_t K, float grad_scale, double smoothing = 0.0);
// the same for the rows r only, whoever calls it.
void softmax_xent_rows(Range r, float* dlogits, float* loss_rows, uint8_t* correct_rows, const float* logits,
                       const int32_t* labels, size_t K, float grad_scale, double smoothing = 0.0);

// probs (B, K) = softmax(logits) row by row; in place allowed. team-aware (rows split), no barrier.
void softmax_forward(float* probs, const float* logits, size_t B, size_t K);

}  // namespace pyreg

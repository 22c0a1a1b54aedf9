// dropout.h: inverted dropout with a counter-based mask (rng.h), team-aware.
//
//   forward   keep element e = b*OUT + j of step `step` at site `stream` when
//             philox_word(seed, stream, step, e) < keep_threshold(rate); y = keep ? x / (1 - rate) : 0
//             mask (B, OUT) = keep (1/0), kept for the backward pass (4 KiB per 32x128 batch:
//             cheaper to keep than to regenerate from the philox words).
//   backward  dx = mask ? dy / (1 - rate) : 0
// inference is the identity and does not call these. team-aware: each thread does its own columns
// (owned_cols); no barrier.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pyreg {

// 2^32 * (1 - rate), so that a uniform 32-bit word falls below it with probability 1 - rate.
uint64_t keep_threshold(double rate);
// 1 / (1 - rate) computed in double, then rounded to float32, as tensorflow scales dropout.
float keep_scale(double rate);

// x (B, OUT) in place; mask (B, OUT) overwritten (this thread's columns).
void dropout_forward(float* x, uint8_t* mask, size_t B, size_t OUT, double rate, uint64_t seed, uint32_t stream,
                     uint64_t step);
// dx (B, OUT) = mask * dy * scale (this thread's columns); in place allowed.
void dropout_backward(float* dx, const float* dy, const uint8_t* mask, size_t B, size_t OUT, double rate);

}  // namespace pyreg

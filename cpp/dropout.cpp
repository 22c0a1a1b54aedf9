// dropout.cpp: rows split between threads; the mask depends only on element indices (rng.h).
#include "dropout.h"

#include <cmath>

#include "parallel.h"
#include "simd.h"

namespace pyreg {

uint64_t keep_threshold(double rate) {
    return (uint64_t)std::llround(std::ldexp(1.0 - rate, 32));
}

float keep_scale(double rate) { return (float)(1.0 / (1.0 - rate)); }

void dropout_forward(float* x, uint8_t* mask, size_t B, size_t OUT, double rate, uint64_t seed, uint32_t stream,
                     uint64_t step) {
    const Range r = my_units(B);
    if (r.end > r.begin)
        kernels().dropout_forward(r.end - r.begin, OUT, x + r.begin * OUT, OUT, mask + r.begin * OUT, seed, stream,
                                  step, r.begin, keep_threshold(rate), keep_scale(rate));
    team_barrier();
}

void dropout_backward(float* dx, const float* dy, const uint8_t* mask, size_t B, size_t OUT, double rate) {
    const float scale = keep_scale(rate);
    const Range r = my_units(B);
    for (size_t i = r.begin * OUT; i < r.end * OUT; ++i) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
    team_barrier();
}

}  // namespace pyreg

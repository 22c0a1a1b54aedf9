// dropout.cpp: columns split between threads; the mask depends only on element indices (rng.h).
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
    const Range c = owned_cols(OUT);
    if (c.end > c.begin)
        kernels().dropout_forward(B, OUT, c.begin, c.end, x, mask, seed, stream, step, keep_threshold(rate),
                                  keep_scale(rate));
}

void dropout_backward(float* dx, const float* dy, const uint8_t* mask, size_t B, size_t OUT, double rate) {
    const float scale = keep_scale(rate);
    const Range c = owned_cols(OUT);
    for (size_t b = 0; b < B; ++b)
        for (size_t i = b * OUT + c.begin; i < b * OUT + c.end; ++i) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

}  // namespace pyreg

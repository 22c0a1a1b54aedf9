// noise.h: keras' noise layers (GaussianNoise, GaussianDropout, AlphaDropout) as a dense layer's output
// transform in training, with counter-based noise (rng.h), team-aware.
//
//   GaussianNoise(stddev)    y = x + (z * f32(stddev) + 0)        d y / d x = 1
//   GaussianDropout(rate)    n = z * f32(sqrt(rate / (1 - rate))) + 1,  y = x * n,   d y / d x = n
//   AlphaDropout(rate)       k = (u >= rate) as 1/0,  x' = x * k + f32(alpha_p) * (1 - k),
//                            y = f32(a) * x' + f32(b),   d y / d x = f32(a) * k
// with keras' constants in double (alpha_p = -1.6732632423543772848 * 1.0507009873554804934,
// a = ((1 - rate) * (1 + rate * alpha_p^2))^-1/2, b = -a * alpha_p * rate) and float32 arithmetic in
// keras' order. z is a standard normal, u a uniform word: element e = b*OUT + j of step `step` at site
// `site` (0 the input, l + 1 layer l's output) reads philox block e / 4 of (seed, kNoiseStream + site,
// step); a block's four words give two box-muller pairs (words 0-1 elements 4q, 4q+1; words 2-3
// elements 4q+2, 4q+3), AlphaDropout uses word e % 4 as u * 2^32. the noise is keras' in
// distribution, not its stream: tensorflow's stateless generators are not reproduced.
// inference is the identity and does not call these. each thread does its own columns (owned_cols);
// no barrier.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pyreg {

enum class NoiseKind : int { none = 0, gaussian_noise = 1, gaussian_dropout = 2, alpha_dropout = 3 };

// a noise layer: its kind and its stddev (GaussianNoise) or rate (the dropouts).
struct NoiseSpec {
    NoiseKind kind = NoiseKind::none;
    double param = 0.0;
    bool active() const { return kind != NoiseKind::none && param > 0.0; }
};

// the philox streams of the noise layers: kNoiseStream + site (dropout uses 0, 1, ...; shuffling 2^32-1)
constexpr uint32_t kNoiseStream = 0x4E000000u;

// "" or "none", "gaussian_noise", "gaussian_dropout", "alpha_dropout"; ValueError otherwise.
NoiseKind noise_kind_from_name(const std::string& name);
// ValueError unless the parameter suits the kind (stddev >= 0; rate in [0, 1)).
void check_noise(const NoiseSpec& n);

// the standard normal of element e (box-muller in double, rounded to float32).
float noise_normal(uint64_t seed, uint32_t stream, uint64_t step, uint64_t e);

// x (B, OUT) in place (this thread's columns); factor (B, OUT), when not null, gets d y / d x (not
// written for GaussianNoise, whose factor is 1).
void noise_forward(float* x, float* factor, size_t B, size_t OUT, const NoiseSpec& n, uint64_t seed, uint32_t site,
                   uint64_t step);
// dx (B, OUT) *= factor (this thread's columns); nothing for GaussianNoise.
void noise_backward(float* dx, const float* factor, size_t B, size_t OUT, NoiseKind kind);

}  // namespace pyreg

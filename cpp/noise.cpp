// noise.cpp: the noise layers' forward and backward (noise.h); columns split between threads, the
// noise a function of element indices only (rng.h).
#include "noise.h"

#include <cmath>

#include "common.h"
#include "parallel.h"
#include "rng.h"

namespace pyreg {

namespace {

constexpr double kTwoPi = 6.283185307179586;
constexpr double kAlpha = 1.6732632423543772848, kScale = 1.0507009873554804934;

struct AlphaConsts {
    float alpha_p, a, b;
};

AlphaConsts alpha_consts(double rate) {
    const double alpha_p = -kAlpha * kScale;
    const double a = std::pow((1.0 - rate) * (1.0 + rate * (alpha_p * alpha_p)), -0.5);
    const double b = -a * alpha_p * rate;
    return {(float)alpha_p, (float)a, (float)b};
}

// the four words of element e's philox block, cached while e stays in one block.
struct Block {
    uint64_t seed;
    uint32_t stream;
    uint64_t step;
    uint64_t q = ~(uint64_t)0;
    Philox4x32 r{};
    const uint32_t* words(uint64_t e) {
        const uint64_t qe = e >> 2;
        if (qe != q) {
            q = qe;
            r = philox4x32_10((uint32_t)q, stream, (uint32_t)step, (uint32_t)(step >> 32) ^ (uint32_t)(q >> 32), seed);
        }
        return r.v;
    }
};

float box_muller(const uint32_t* w, uint64_t e) {
    const size_t p = (size_t)(e & 3) >> 1;
    const double u1 = ((double)w[2 * p] + 1.0) * 0x1p-32;  // (0, 1]: the log is finite
    const double u2 = (double)w[2 * p + 1] * 0x1p-32;      // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    return (float)((e & 1) ? r * std::sin(kTwoPi * u2) : r * std::cos(kTwoPi * u2));
}

}  // namespace

NoiseKind noise_kind_from_name(const std::string& name) {
    if (name.empty() || name == "none") return NoiseKind::none;
    if (name == "gaussian_noise") return NoiseKind::gaussian_noise;
    if (name == "gaussian_dropout") return NoiseKind::gaussian_dropout;
    PYREG_CHECK(name == "alpha_dropout",
                "noise must be 'gaussian_noise', 'gaussian_dropout' or 'alpha_dropout'; got '" << name << "'");
    return NoiseKind::alpha_dropout;
}

void check_noise(const NoiseSpec& n) {
    if (n.kind == NoiseKind::gaussian_noise)
        PYREG_CHECK(n.param >= 0.0 && std::isfinite(n.param), "stddev must be finite and >= 0; got " << n.param);
    else if (n.kind != NoiseKind::none)
        PYREG_CHECK(n.param >= 0.0 && n.param < 1.0, "rate must be in [0, 1); got " << n.param);
}

float noise_normal(uint64_t seed, uint32_t stream, uint64_t step, uint64_t e) {
    Block blk{seed, stream, step};
    return box_muller(blk.words(e), e);
}

void noise_forward(float* x, float* factor, size_t B, size_t OUT, const NoiseSpec& n, uint64_t seed, uint32_t site,
                   uint64_t step) {
    if (!n.active()) return;
    const Range c = owned_cols(OUT);
    if (c.end <= c.begin) return;
    Block blk{seed, kNoiseStream + site, step};
    switch (n.kind) {
        case NoiseKind::gaussian_noise: {
            const float s = (float)n.param;
            for (size_t b = 0; b < B; ++b)
                for (size_t e = b * OUT + c.begin; e < b * OUT + c.end; ++e) {
                    const float noise = box_muller(blk.words(e), e) * s + 0.0f;
                    x[e] = x[e] + noise;
                }
            break;
        }
        case NoiseKind::gaussian_dropout: {
            const float s = (float)std::sqrt(n.param / (1.0 - n.param));
            for (size_t b = 0; b < B; ++b)
                for (size_t e = b * OUT + c.begin; e < b * OUT + c.end; ++e) {
                    const float noise = box_muller(blk.words(e), e) * s + 1.0f;
                    x[e] = x[e] * noise;
                    if (factor) factor[e] = noise;
                }
            break;
        }
        case NoiseKind::alpha_dropout: {
            const AlphaConsts k = alpha_consts(n.param);
            // kept when u = word * 2^-32 >= rate
            const uint64_t t = (uint64_t)std::ceil(std::ldexp(n.param, 32));
            for (size_t b = 0; b < B; ++b)
                for (size_t e = b * OUT + c.begin; e < b * OUT + c.end; ++e) {
                    const float kept = (uint64_t)blk.words(e)[e & 3] >= t ? 1.0f : 0.0f;
                    const float xp = x[e] * kept + k.alpha_p * (1.0f - kept);
                    x[e] = k.a * xp + k.b;
                    if (factor) factor[e] = k.a * kept;
                }
            break;
        }
        default: break;
    }
}

void noise_backward(float* dx, const float* factor, size_t B, size_t OUT, NoiseKind kind) {
    if (kind == NoiseKind::none || kind == NoiseKind::gaussian_noise) return;
    const Range c = owned_cols(OUT);
    for (size_t b = 0; b < B; ++b)
        for (size_t i = b * OUT + c.begin; i < b * OUT + c.end; ++i) dx[i] = dx[i] * factor[i];
}

}  // namespace pyreg

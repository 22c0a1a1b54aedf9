// loss.cpp: softmax cross-entropy rows, float32 throughout like tensorflow's kernel.
#include "loss.h"

#include <cmath>

#include "parallel.h"

namespace pyreg {

namespace {

struct RowStats {
    float max;
    size_t argmax;
    float sum;  // sum_k exp(z_k - max)
};

// rows of up to this many classes keep their exps on the stack for the softmax (one exp per logit
// instead of two); wider rows compute them again.
constexpr size_t kKeptExps = 64;

// e (K), when not null, gets exp(z_k - max).
inline RowStats row_stats(const float* z, size_t K, float* e) {
    RowStats s{z[0], 0, 0.0f};
    for (size_t k = 1; k < K; ++k)
        if (z[k] > s.max) {
            s.max = z[k];
            s.argmax = k;
        }
    for (size_t k = 0; k < K; ++k) {
        const float ek = std::exp(z[k] - s.max);
        if (e) e[k] = ek;
        s.sum += ek;
    }
    return s;
}

// softmax_xent_rows with label smoothing: the targets y'_k = onehot_k * (1 - ls) + ls / K.
void smoothed_xent_rows(Range r, float* dlogits, float* loss_rows, uint8_t* correct_rows, const float* logits,
                        const int32_t* labels, size_t K, float grad_scale, double ls) {
    // keras: y * float(1 - ls) + float(ls) / float(K), the double 1 - ls rounded once
    const float off = (float)ls / (float)K, on = (float)(1.0 - ls) + off;
    for (size_t b = r.begin; b < r.end; ++b) {
        const float* z = logits + b * K;
        const size_t y = (size_t)labels[b];
        const RowStats s = row_stats(z, K, nullptr);
        const float lse = std::log(s.sum);
        float loss = 0.0f;
        for (size_t k = 0; k < K; ++k) loss += (k == y ? on : off) * (lse - (z[k] - s.max));
        loss_rows[b] = loss;
        correct_rows[b] = (uint8_t)(s.argmax == y);
        if (dlogits) {
            float* d = dlogits + b * K;
            for (size_t k = 0; k < K; ++k) d[k] = (std::exp(z[k] - s.max) / s.sum - (k == y ? on : off)) * grad_scale;
        }
    }
}

}  // namespace

void softmax_xent(float* dlogits, float* loss_rows, uint8_t* correct_rows, const float* logits, const int32_t* labels,
                  size_t B, size_t K, float grad_scale, double smoothing) {
    softmax_xent_rows(my_units(B), dlogits, loss_rows, correct_rows, logits, labels, K, grad_scale, smoothing);
}

void softmax_xent_rows(Range r, float* dlogits, float* loss_rows, uint8_t* correct_rows, const float* logits,
                       const int32_t* labels, size_t K, float grad_scale, double smoothing) {
    if (smoothing != 0.0) {
        smoothed_xent_rows(r, dlogits, loss_rows, correct_rows, logits, labels, K, grad_scale, smoothing);
        return;
    }
    float kept[kKeptExps];
    float* e = K <= kKeptExps ? kept : nullptr;
    for (size_t b = r.begin; b < r.end; ++b) {
        const float* z = logits + b * K;
        const size_t y = (size_t)labels[b];
        const RowStats s = row_stats(z, K, e);
        loss_rows[b] = std::log(s.sum) - (z[y] - s.max);
        correct_rows[b] = (uint8_t)(s.argmax == y);
        if (dlogits) {
            float* d = dlogits + b * K;
            for (size_t k = 0; k < K; ++k) {
                const float p = (e ? e[k] : std::exp(z[k] - s.max)) / s.sum;
                d[k] = (k == y ? p - 1.0f : p) * grad_scale;
            }
        }
    }
}

void softmax_forward(float* probs, const float* logits, size_t B, size_t K) {
    const Range r = my_units(B);
    float kept[kKeptExps];
    float* e = K <= kKeptExps ? kept : nullptr;
    for (size_t b = r.begin; b < r.end; ++b) {
        const float* z = logits + b * K;
        float* p = probs + b * K;
        const RowStats s = row_stats(z, K, e);
        for (size_t k = 0; k < K; ++k) p[k] = (e ? e[k] : std::exp(z[k] - s.max)) / s.sum;
    }
}

}  // namespace pyreg

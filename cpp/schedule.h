// schedule.h: learning-rate schedules evaluated natively, once per optimizer step.
//
// keras 3 calls the schedule with the optimizer's step counter before it is incremented, so step k
// (k = 0 first) uses lr_at(k), for the update and for the decoupled weight decay alike
// (keras/src/optimizers/base_optimizer.py). every formula is the float32 sequence of operations of
// keras/src/optimizers/schedules/learning_rate_schedule.py on the TensorFlow backend: python
// constants (1 - alpha, ...) are doubles rounded to float32 where they meet a float32 tensor, and the
// step is cast to float32 first. kind none means a constant learning rate (OptimizerConfig's).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace pyreg {

enum class ScheduleKind : int { none = 0, exponential = 1, inverse_time = 2, piecewise = 3, cosine = 4 };

struct LrSchedule {
    ScheduleKind kind = ScheduleKind::none;
    double initial = 0.0;      // initial_learning_rate
    double decay_steps = 1.0;  // > 0
    double decay_rate = 0.0;   // exponential, inverse_time
    bool staircase = false;    // exponential, inverse_time
    double alpha = 0.0;        // cosine: the floor, a fraction of the decayed-from rate
    bool warmup = false;       // cosine: warmup_target was given (else warmup_steps is ignored)
    double warmup_target = 0.0, warmup_steps = 0.0;
    std::vector<int64_t> boundaries;  // piecewise: step boundaries (keras casts them to the step's int64)
    std::vector<float> values;        // piecewise: len(boundaries) + 1 float32 values

    bool active() const { return kind != ScheduleKind::none; }

    // the learning rate of the step taken when `step` steps have been taken, in float32.
    float lr_at(int64_t step) const {
        const float s = (float)step;
        switch (kind) {
            case ScheduleKind::exponential: {  // lr0 * pow(rate, p), p = s / ds (floored if staircase)
                float p = s / (float)decay_steps;
                if (staircase) p = std::floor(p);
                return (float)initial * std::pow((float)decay_rate, p);
            }
            case ScheduleKind::inverse_time: {  // lr0 / (1 + rate * p)
                float p = s / (float)decay_steps;
                if (staircase) p = std::floor(p);
                return (float)initial / (1.0f + (float)decay_rate * p);
            }
            case ScheduleKind::piecewise: {
                // keras sums indicator * value: values[0] where step <= b[0], then values[-1] where
                // step > b[-1], then values[i] where b[i-1] < step <= b[i], in that order.
                const size_t nb = boundaries.size();
                float r = 0.0f;
                r += (float)(step <= boundaries[0]) * values[0];
                r += (float)(step > boundaries[nb - 1]) * values[nb];
                for (size_t i = 1; i < nb; ++i)
                    r += (float)(step > boundaries[i - 1] && step <= boundaries[i]) * values[i];
                return r;
            }
            case ScheduleKind::cosine: {
                const float ds = (float)decay_steps, lr0 = (float)initial;
                if (!warmup) return cosine_decay(std::min(s, ds), ds, lr0);
                const float target = (float)warmup_target, ws = (float)warmup_steps;
                const float t = std::min(s, ds + ws);
                if (t < ws) return (target - lr0) * (t / ws) + lr0;
                return cosine_decay(t - ws, ds, target);
            }
            case ScheduleKind::none:
                break;
        }
        return 0.0f;
    }

  private:
    // from * ((1 - alpha) * (0.5 * (1 + cos(pi * (t / ds)))) + alpha), keras' _decay_function.
    float cosine_decay(float t, float ds, float from) const {
        const float pi = (float)3.141592653589793;
        const float fraction = t / ds;
        const float cosine = 0.5f * (1.0f + std::cos(pi * fraction));
        const float decayed = (float)(1.0 - alpha) * cosine + (float)alpha;
        return from * decayed;
    }
};

}  // namespace pyreg

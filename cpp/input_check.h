// input_check.h: the threaded NaN/Inf check of a whole input (fit's and predict's input check, and the
// trainer's fallback when its own row scans do not cover the input: Mlp::train_epoch, check_input).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "parallel.h"
#include "simd.h"

namespace pyreg {

// index of the first element of a (n) that is NaN or Inf (or too large for float32 when converting),
// or -1; when out is given, out = (float)a. threads split [0, n) in fixed chunks.
template <class T>
int64_t first_nonfinite(const T* a, size_t n, float* out, int threads) {
    constexpr size_t CH = 1 << 16;
    const size_t chunks = (n + CH - 1) / CH;
    std::vector<int64_t> bad(chunks, -1);
    run_team(threads, [&] {
        const Range r = my_units(chunks);
        for (size_t c = r.begin; c < r.end; ++c) {
            const size_t b = c * CH, e = std::min(n, b + CH);
            bool ok = true;
            if constexpr (std::is_same_v<T, float>) {
                ok = !kernels().any_nonfinite(a + b, e - b);  // vectorised: the check runs at memory speed
            } else {
                for (size_t i = b; i < e; ++i) {
                    const float f = (float)a[i];
                    out[i] = f;
                    ok &= (f - f) == 0.0f;  // false for NaN and +-Inf (also after float64 -> float32 overflow)
                }
            }
            if (!ok)
                for (size_t i = b; i < e; ++i)
                    if (!(((float)a[i] - (float)a[i]) == 0.0f)) {
                        bad[c] = (int64_t)i;
                        break;
                    }
        }
    });
    for (int64_t i : bad)
        if (i >= 0) return i;
    return -1;
}

}  // namespace pyreg

// fpenv.h: denormal floats flushed to zero while the trainer runs, as TensorFlow does.
//
// TensorFlow runs its CPU kernels with flush-to-zero and denormals-are-zero set (ScopedFlushDenormal
// in its executor threads; checked: tf.constant(1e-38) * 0.5 is 0 in keras' fit), so the study's
// keras reference never holds a denormal. The trainer does the same on every thread of its team, for
// fidelity and because the Adam moments of rarely active inputs decay into the denormal range, where
// arithmetic is slow. The previous state is restored on scope exit, so standalone kernels and the
// caller's thread keep IEEE behaviour.
#pragma once

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace pyreg {

class FlushDenormals {
  public:
#if defined(__SSE2__) || defined(_M_X64)
    FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
    ~FlushDenormals() { _mm_setcsr(saved_); }

  private:
    static constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bits 15 (flush to zero) and 6 (denormals are zero)
    unsigned saved_;
#elif defined(__aarch64__)
    FlushDenormals() : saved_(__builtin_aarch64_get_fpcr()) { __builtin_aarch64_set_fpcr(saved_ | kFz); }
    ~FlushDenormals() { __builtin_aarch64_set_fpcr(saved_); }

  private:
    static constexpr unsigned kFz = 1u << 24;  // FPCR.FZ: flush denormal inputs and outputs to zero
    unsigned saved_;
#else
    FlushDenormals() = default;  // elsewhere: IEEE denormals
#endif
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;
};

}  // namespace pyreg

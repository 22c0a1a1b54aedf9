// parallel.h: the thread team. Kernels are "team-aware": called by every thread of an OpenMP
// parallel region, each takes its share of fixed work units and meets the others at a barrier.
// A unit's result never depends on which thread computes it, so every result is identical for
// any thread count. Without OpenMP the team is one thread and barriers are no-ops.
#pragma once

#include <atomic>
#include <cstddef>
#include <thread>

#include "common.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyreg {

inline int team_rank() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

inline int team_size() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

inline void team_barrier() {
#ifdef _OPENMP
#pragma omp barrier
#endif
}

// threads used when the caller does not say: OMP_NUM_THREADS if set, else every core we may run on.
inline int default_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline bool have_openmp() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

// runs body() on a team of `threads` threads (body must not throw). a team of one runs on the calling
// thread without opening a parallel region (team_rank() is 0 and team_size() 1 there too).
template <class Body>
void run_team(int threads, Body body) {
#ifdef _OPENMP
    if (threads <= 1) {
        body();
        return;
    }
#pragma omp parallel num_threads(threads)
    body();
#else
    (void)threads;
    body();
#endif
}

// runs body() on this thread as a team of its own (a nested region of one thread): the team-aware
// kernels it calls take all the work and their barriers are no-ops. inference uses it to give each
// thread whole rows (no column split, no barrier, no row read by two cores).
template <class Body>
void run_alone(Body body) {
#ifdef _OPENMP
    if (omp_in_parallel() && omp_get_num_threads() > 1) {
#pragma omp parallel num_threads(1)
        body();
        return;
    }
#endif
    body();
}

// this thread's share [begin, end) of n units, then nothing: the caller places the barrier.
inline Range my_units(size_t n) { return split_range(n, team_rank(), team_size(), 1); }

// this thread's share of n units of side work while thread 0 is busy with the narrow output layer,
// whose columns it owns alone: threads 1 .. T-1 split them; a team of one takes them all.
inline Range helper_units(size_t n) {
    const int T = team_size(), t = team_rank();
    if (T == 1) return {0, n};
    if (t == 0) return {0, 0};
    return split_range(n, t - 1, T - 1, 1);
}

// column ownership. a layer's OUT columns are cut into blocks of kColBlock floats (common.h) and
// thread t owns a contiguous run of them, the same run in every phase: forward output, dropout mask,
// weight and bias gradients, optimizer update, and the gradient flowing into those columns. with the
// trainer's panel layout (dense.h) a thread's weights are contiguous memory that only its core
// reads and writes (threads writing interleaved parts of the same rows would share cache lines).
inline Range owned_cols(size_t n) { return split_range(n, team_rank(), team_size(), kColBlock); }
inline Range owned_cols_of(size_t n, int t, int nt) { return split_range(n, t, nt, kColBlock); }

// waits until done() holds: spins on pause instructions a few hundred times (a short wait), then
// yields the core at every try, so that an oversubscribed or descheduled team still moves on.
template <class Done>
inline void spin_until(Done done) {
    constexpr int kSpins = 512;
    for (int spins = 0; !done(); ++spins) {
        if (spins < kSpins) {
#if defined(__x86_64__) || defined(_M_X64)
            _mm_pause();
#elif defined(__aarch64__)
            asm volatile("yield");
#endif
        } else {
            std::this_thread::yield();
        }
    }
}

// a team barrier for a hot loop (the trainer's steps): a spin on one shared counter, cheaper than omp's
// barrier. set_size(team_size()) by one thread, then an omp barrier, first.
class SpinBarrier {
  public:
    void set_size(int n) { size_ = n; }
    void wait() {
        if (size_ <= 1) return;
        const unsigned g = generation_.load(std::memory_order_relaxed);
        // acq_rel: the last arrival sees every write made before the others arrived, and its release
        // of the next generation passes them on to the waiters.
        if (arrived_.fetch_add(1, std::memory_order_acq_rel) == size_ - 1) {
            arrived_.store(0, std::memory_order_relaxed);
            generation_.store(g + 1, std::memory_order_release);
            return;
        }
        spin_until([&] { return generation_.load(std::memory_order_acquire) != g; });
    }

  private:
    alignas(kCacheLine) std::atomic<int> arrived_{0};
    alignas(kCacheLine) std::atomic<unsigned> generation_{0};
    int size_ = 1;
};

}  // namespace pyreg

// rng.h: Philox4x32-10, the counter-based generator of Salmon et al., "Parallel random numbers:
// as easy as 1, 2, 3" (SC'11). A draw is a pure function of (key, counter): no state is carried
// from one draw to the next, so any element's random number can be computed by any thread in any
// order, and a dropout mask does not depend on how a batch is split or how many threads run.
//
// pyreg's streams:
//   key     = the 64-bit seed
//   counter = (element_index / 4, stream, step low 32 bits, step high 32 bits)
//   stream  = dropout site (0, 1, ...) or kShuffleStream for the epoch permutation
// the four 32-bit words of one block serve elements 4q .. 4q+3.
#pragma once

#include <cstdint>

namespace pyreg {

constexpr uint32_t kShuffleStream = 0xFFFFFFFFu;

struct Philox4x32 {
    uint32_t v[4];
};

inline void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
}

// one 128-bit block: ten rounds with the Weyl key schedule.
inline Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint64_t key) {
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; ++r) {
        philox_round(c0, c1, c2, c3, k0, k1);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return {{c0, c1, c2, c3}};
}

// the 32-bit random word for element `index` of (seed, stream, step).
inline uint32_t philox_word(uint64_t seed, uint32_t stream, uint64_t step, uint64_t index) {
    const uint64_t q = index >> 2;
    Philox4x32 r = philox4x32_10((uint32_t)q, stream, (uint32_t)step, (uint32_t)(step >> 32) ^ (uint32_t)(q >> 32), seed);
    return r.v[index & 3];
}

// explicit-state convenience generator: a sequence of words from one (seed, stream, step).
struct Rng {
    uint64_t seed;
    uint32_t stream;
    uint64_t step;
    uint64_t index = 0;
    uint32_t next_u32() { return philox_word(seed, stream, step, index++); }
    uint64_t next_u64() {
        uint64_t hi = next_u32();
        return (hi << 32) | next_u32();
    }
    // uniform integer in [0, n) without modulo bias (Lemire's multiply-shift with rejection).
    uint64_t next_below(uint64_t n) {
        uint64_t x = next_u32();
        if (n <= 0xFFFFFFFFull) {
            uint64_t m = x * n;
            uint32_t l = (uint32_t)m;
            if (l < (uint32_t)n) {
                const uint32_t t = (uint32_t)(-(uint32_t)n) % (uint32_t)n;
                while (l < t) {
                    x = next_u32();
                    m = x * n;
                    l = (uint32_t)m;
                }
            }
            return m >> 32;
        }
        uint64_t y;
        do { y = next_u64(); } while (y >= (UINT64_MAX - UINT64_MAX % n));
        return y % n;
    }
};

}  // namespace pyreg

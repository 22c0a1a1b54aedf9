// common.h: checks, activation codes and size helpers shared by every kernel.
//
// dimension letters, fixed project-wide:
//   B   batch rows            IN  in-features of a dense layer
//   OUT out-features          K   classes (the last layer's OUT)
//   P   parameters in one arena (all kernels, then all biases, in layer order)
// memory is float32, C-contiguous, row-major; a dense weight is stored (IN, OUT) as in Keras.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pyreg {

// an allocator that starts every buffer on a cache line: the trainer's buffers are split between
// threads at 256-byte column boundaries and read in 64-byte vectors, so a buffer that malloc starts
// 16 bytes into a line would make every vector load straddle two lines and neighbouring threads'
// columns share lines.
constexpr size_t kCacheLine = 64;
template <class T>
struct CacheAligned {
    using value_type = T;
    CacheAligned() = default;
    template <class U>
    CacheAligned(const CacheAligned<U>&) {}
    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kCacheLine))); }
    void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(kCacheLine)); }
    template <class U>
    bool operator==(const CacheAligned<U>&) const { return true; }
    template <class U>
    bool operator!=(const CacheAligned<U>&) const { return false; }
};
template <class T>
using aligned_vector = std::vector<T, CacheAligned<T>>;

// throws std::invalid_argument (python: ValueError) with a message built from stream pieces.
#define PYREG_CHECK(cond, msg)                                   \
    do {                                                         \
        if (!(cond)) {                                           \
            std::ostringstream pyreg_os_;                        \
            pyreg_os_ << msg;                                    \
            throw std::invalid_argument(pyreg_os_.str());        \
        }                                                        \
    } while (0)

// activations a dense layer can apply in its epilogue (relu, linear) or in a second pass.
enum class Act : int { linear = 0, relu = 1, sigmoid = 2, tanh = 3, softmax = 4 };

inline const char* act_name(Act a) {
    switch (a) {
        case Act::linear: return "linear";
        case Act::relu: return "relu";
        case Act::sigmoid: return "sigmoid";
        case Act::tanh: return "tanh";
        case Act::softmax: return "softmax";
    }
    return "?";
}

inline Act act_from_name(const std::string& name) {
    if (name == "linear") return Act::linear;
    if (name == "relu") return Act::relu;
    if (name == "sigmoid") return Act::sigmoid;
    if (name == "tanh") return Act::tanh;
    if (name == "softmax") return Act::softmax;
    PYREG_CHECK(false, "activation must be one of 'linear', 'relu', 'sigmoid', 'tanh', 'softmax'; got '"
                           << name << "'");
    return Act::linear;
}

// columns per block: the unit of thread ownership (parallel.h) and of the trainer's weight panels
// (dense.h). 64 floats are four whole cache lines.
constexpr size_t kColBlock = 64;

// a contiguous range [begin, end) of an index space; used to hand work to threads.
struct Range {
    size_t begin, end;
};

// the part of [0, n) that worker `t` of `nt` owns, split in units of `align` elements so that
// vector loops never straddle two workers. the split decides only who computes what, never
// the order of any sum, so results do not depend on the thread count.
inline Range split_range(size_t n, int t, int nt, size_t align = 16) {
    size_t units = (n + align - 1) / align;
    size_t per = units / (size_t)nt, rem = units % (size_t)nt;
    size_t u0 = (size_t)t * per + ((size_t)t < rem ? (size_t)t : rem);
    size_t u1 = u0 + per + ((size_t)t < rem ? 1 : 0);
    size_t b = u0 * align, e = u1 * align;
    if (b > n) b = n;
    if (e > n) e = n;
    return {b, e};
}

}  // namespace pyreg

// dispatch.cpp: chooses the kernel table for this CPU once, and lets tests force another one.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "simd.h"

namespace pyreg {

#ifdef PYREG_HAVE_AVX512
namespace avx512 { const KernelTable* table(); }
const KernelTable* kernels_avx512() { return avx512::table(); }
#else
const KernelTable* kernels_avx512() { return nullptr; }
#endif
#ifdef PYREG_HAVE_AVX2
namespace avx2 { const KernelTable* table(); }
const KernelTable* kernels_avx2() { return avx2::table(); }
#else
const KernelTable* kernels_avx2() { return nullptr; }
#endif
namespace generic { const KernelTable* table(); }
const KernelTable* kernels_generic() { return generic::table(); }

namespace {

bool cpu_has(const char* isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (std::strcmp(isa, "avx512") == 0)  // the flags the avx512 object is compiled with (CMakeLists.txt)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("fma");
    if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return std::strcmp(isa, "generic") == 0;
}

struct Candidate {
    const char* name;
    const KernelTable* (*get)();
};
const Candidate kCandidates[] = {{"avx512", kernels_avx512}, {"avx2", kernels_avx2}, {"generic", kernels_generic}};

const KernelTable* find(const char* name) {
    for (const Candidate& c : kCandidates)
        if (std::strcmp(c.name, name) == 0 && c.get() != nullptr && cpu_has(c.name)) return c.get();
    return nullptr;
}

// PYREG_ISA in the environment caps the choice (e.g. PYREG_ISA=avx2 on an avx512 machine).
const KernelTable* choose_default() {
    const char* env = std::getenv("PYREG_ISA");
    if (env && *env) {
        if (const KernelTable* t = find(env)) return t;
    }
    for (const Candidate& c : kCandidates)
        if (const KernelTable* t = find(c.name)) return t;
    return kernels_generic();
}

std::atomic<const KernelTable*> g_active{nullptr};

}  // namespace

const KernelTable& kernels() {
    const KernelTable* t = g_active.load(std::memory_order_acquire);
    if (!t) {
        t = choose_default();
        g_active.store(t, std::memory_order_release);
    }
    return *t;
}

const char* const* available_isas(int* count) {
    static const char* names[3];
    static int n = [] {
        int k = 0;
        for (const Candidate& c : kCandidates)
            if (find(c.name)) names[k++] = c.name;
        return k;
    }();
    *count = n;
    return names;
}

void select_kernels(const char* name) {
    const KernelTable* t = find(name);
    PYREG_CHECK(t != nullptr, "isa must be one of the instruction sets this build and CPU support "
                                  "(see pyreg.build_info()['isa_available']); got '" << name << "'");
    g_active.store(t, std::memory_order_release);
}

}  // namespace pyreg

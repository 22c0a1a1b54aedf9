// simd_act.cpp: the activation backward of the KernelTable, dz = dy * act'(y), with dropout's mask
// and scale applied first when the layer has one. compiled once per instruction set (simd_isa.h).
#include "simd_isa.h"

namespace pyreg {
namespace PYREG_ISA {

namespace {

// the mask's bytes are widened lane by lane.

typedef int32_t vi __attribute__((vector_size(sizeof(vf))));
typedef uint8_t vbytes __attribute__((vector_size(VW)));

inline vf mask_select(const uint8_t* mask, int cnt, vf d, float scale) {
    const vf z = {};
    // a whole vector's bytes widened in one instruction: gcc builds the generic conversion below byte
    // by byte
#if defined(__AVX512F__)
    if (cnt == VW) {
        const __m512i wide = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)mask));
        return (vf)_mm512_maskz_mul_ps(_mm512_test_epi32_mask(wide, wide), (__m512)d, _mm512_set1_ps(scale));
    }
#elif defined(__AVX2__)
    if (cnt == VW) {
        const vi keep = (vi)_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)mask));
        return keep != 0 ? d * scale : z;
    }
#endif
    vbytes mb = {};
    std::memcpy(&mb, mask, (size_t)cnt);
    const vi keep = __builtin_convertvector(mb, vi);
    return keep != 0 ? d * scale : z;
}

template <Act A, bool MASK>
void act_backward_impl(size_t rows, size_t c0, size_t c1, size_t ldm, float* dz, const float* dy, const float* y,
                       const uint8_t* mask, float scale) {
    const vf z = {}, one = vset1(1.0f);
    for (size_t r = 0; r < rows; ++r) {
        const size_t o = r * ldm;
        for (size_t j = c0; j < c1; j += VW) {
            const int cnt = (int)(c1 - j < (size_t)VW ? c1 - j : (size_t)VW);
            vf d = ld(dy + o + j, cnt);
            if (MASK) d = mask_select(mask + o + j, cnt, d, scale);
            if (A != Act::linear) {
                const vf yv = ld(y + o + j, cnt);
                if (A == Act::relu) d = yv > z ? d : z;
                if (A == Act::sigmoid) d = d * (yv * (one - yv));
                if (A == Act::tanh) d = d * (one - yv * yv);
            }
            st(dz + o + j, d, cnt);
        }
    }
}

}  // namespace

void act_backward(size_t rows, size_t c0, size_t c1, size_t ldm, float* dz, const float* dy, const float* y,
                  const uint8_t* mask, float scale, Act act) {
    auto run = [&](auto impl) { impl(rows, c0, c1, ldm, dz, dy, y, mask, scale); };
    const bool m = mask != nullptr;
    switch (act) {
        case Act::relu: m ? run(act_backward_impl<Act::relu, true>) : run(act_backward_impl<Act::relu, false>); break;
        case Act::sigmoid:
            m ? run(act_backward_impl<Act::sigmoid, true>) : run(act_backward_impl<Act::sigmoid, false>);
            break;
        case Act::tanh: m ? run(act_backward_impl<Act::tanh, true>) : run(act_backward_impl<Act::tanh, false>); break;
        default: m ? run(act_backward_impl<Act::linear, true>) : run(act_backward_impl<Act::linear, false>); break;
    }
}

}  // namespace PYREG_ISA
}  // namespace pyreg

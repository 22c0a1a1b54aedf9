// simd_table.cpp: the KernelTable (simd.h) of one instruction set, from the kernels of the family
// files (simd_gemm.cpp, simd_act.cpp, simd_scan.cpp, simd_optim.cpp, simd_dropout.cpp,
// simd_sweep.cpp). compiled once per instruction set with them (simd_isa.h); dispatch.cpp picks the
// table this CPU runs.
#include "simd_isa.h"

#define PYREG_STR2(x) #x
#define PYREG_STR(x) PYREG_STR2(x)

namespace pyreg {
namespace PYREG_ISA {

const KernelTable* table() {
    static const KernelTable t = {PYREG_STR(PYREG_ISA), VW, MR, NV * VW, gemm_nn, gemm_tn, act_backward,
                                  nonzero_bits, any_nonfinite, adam, sgd, dropout_forward,
                                  column_bits, sparse_weight_grad, sparse_grad_adam, sparse_forward_chunk};
    return &t;
}

}  // namespace PYREG_ISA
}  // namespace pyreg

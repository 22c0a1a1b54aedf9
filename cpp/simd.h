// simd.h: the table of hot kernels that simd_kernels.cpp provides once per instruction set.
//
// simd_kernels.cpp is compiled several times (generic, avx2, avx512) into different namespaces;
// dispatch.cpp picks one table at load time from what the CPU supports (overridable for tests).
// everything above this layer (dense, dropout, optim, mlp) calls kernels only through the table,
// so the same source runs on any x86-64 and on aarch64 (generic only).
//
// conventions: float32, row-major; "rows" arguments are arrays of row pointers so that a batch can
// be read straight from the data set through a shuffled index, without a gather copy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.h"

namespace pyreg {

// coefficients of one fused optimizer pass over a contiguous part of the arena that shares one
// regularisation setting (a kernel, or a bias).
struct OptCoef {
    // adam: alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t); keras' adam.py.
    float alpha;
    float one_minus_beta_1, one_minus_beta_2, epsilon;
    // sgd: learning rate, momentum (0 = none), nesterov flag.
    float lr, momentum;
    bool nesterov;
    // coupled regularisation, part of the loss: g += l1 * sign(w) + 2 * l2 * w (keras regularizers).
    float l1, l2;
    // decoupled weight decay, not part of the loss: w -= w * wd * lr before the step (keras base optimizer).
    float wd, wd_lr;
};

struct KernelTable {
    const char* name;  // "avx512", "avx2" or "generic"
    int vector_width;  // floats per vector register
    int mr, nr;        // rows and columns of one gemm register tile

    // C (m, n) = act(A (m, k) . B (k, n) + bias (n))     overwritten; act is linear or relu.
    // with accumulate: C += A . B (bias and act ignored).
    // A row r is arows[r][0 .. k); B row p is b + p*ldb; C row r is c + r*ldc.
    void (*gemm_nn)(size_t m, size_t n, size_t k, const float* const* arows, const float* b, size_t ldb,
                    const float* bias, Act act, bool accumulate, float* c, size_t ldc);

    // C (m, n) = (or +=) A^T . B where A is (k, m): A^T(i, p) = arows[p][a_off + i].
    // this is the weight gradient dW (IN, OUT) = X^T (IN, B) . dZ (B, OUT).
    void (*gemm_tn)(size_t m, size_t n, size_t k, const float* const* arows, size_t a_off, const float* b,
                    size_t ldb, bool accumulate, float* c, size_t ldc);

    // sparse-input variant of gemm_nn (overwrite, linear or relu): each row of A is scanned for
    // non-zeros, which are recorded (nz_idx, nz_val: (m, k) capacity, row r at r*k; nz_cnt (m)) for
    // the backward pass, and only the non-zeros are multiplied. the sum runs over p in increasing
    // order exactly as in gemm_nn, so the result equals the dense one up to the sign of zero.
    void (*sparse_nn)(size_t m, size_t n, size_t k, const float* const* arows, const float* b, size_t ldb,
                      const float* bias, Act act, float* c, size_t ldc, uint32_t* nz_idx, float* nz_val,
                      uint32_t* nz_cnt);

    // dW rows [i0, i1) (all n columns) += sum over batch rows r of nz_val * dZ[r]: the weight gradient
    // from the recorded non-zeros. accumulated; rows outside [i0, i1) are not touched.
    void (*sparse_tn)(size_t i0, size_t i1, size_t n, size_t m, size_t k, const uint32_t* nz_idx,
                      const float* nz_val, const uint32_t* nz_cnt, const float* dz, size_t lddz, float* dw,
                      size_t lddw);

    // adam over n parameters, one pass: w, m, v (and vhat when amsgrad) updated in place.
    // also returns sum(w^2) and sum(|w|) of the updated weights (the next step's penalty).
    void (*adam)(size_t n, float* w, const float* g, float* m, float* v, float* vhat, const OptCoef& c,
                 double* sum_sq, double* sum_abs);
    // sgd with optional (nesterov) momentum; mom may be null when momentum == 0.
    void (*sgd)(size_t n, float* w, const float* g, float* mom, const OptCoef& c, double* sum_sq,
                double* sum_abs);

    // inverted dropout in place on x (rows, cols) row stride ldx: keep element e = (row0 + r)*cols + j
    // when philox_word(seed, stream, step, e) < keep_threshold, then scale it; mask (rows, cols) gets 1/0.
    void (*dropout_forward)(size_t rows, size_t cols, float* x, size_t ldx, uint8_t* mask, uint64_t seed,
                            uint32_t stream, uint64_t step, size_t row0, uint64_t keep_threshold, float scale);
};

// the tables compiled into this build (null when an instruction set was not compiled in).
const KernelTable* kernels_generic();
const KernelTable* kernels_avx2();
const KernelTable* kernels_avx512();

// the table in use; chosen once from the CPU, or set by select_kernels (tests, benchmarks).
const KernelTable& kernels();
// names the instruction sets this build has and this CPU can run, best first.
const char* const* available_isas(int* count);
// switches the active table; throws invalid_argument for an unknown or unsupported name.
void select_kernels(const char* name);

}  // namespace pyreg

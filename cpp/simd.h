// simd.h: the table of hot kernels that the simd_*.cpp sources provide once per instruction set.
//
// those sources (one per kernel family, simd_isa.h) are compiled several times (generic, avx2, avx512)
// into different namespaces, each giving one table (simd_table.cpp);
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
    // kidx, when not null, lists the k indices p (increasing) to sum over; all other p are skipped:
    // the sparse-input path passes the columns where some row of A is non-zero, and since the
    // skipped terms are exact zeros the result equals the dense one (up to the sign of zero).
    void (*gemm_nn)(size_t m, size_t n, size_t k, const float* const* arows, const uint32_t* kidx, const float* b,
                    size_t ldb, const float* bias, Act act, bool accumulate, float* c, size_t ldc);

    // C (m, n) = (or +=) A^T . B where A is (k, m): A^T(i, p) = arows[p][a_off + i]; kidx as above.
    // this is the weight gradient dW (IN, OUT) = X^T (IN, B) . dZ (B, OUT).
    void (*gemm_tn)(size_t m, size_t n, size_t k, const float* const* arows, size_t a_off, const uint32_t* kidx,
                    const float* b, size_t ldb, bool accumulate, float* c, size_t ldc);

    // dz = dy * act'(y) over rows (rows) and columns [c0, c1) of (.., ld) arrays, in place allowed;
    // with a mask (uint8, 1 = kept), dy is first replaced by mask ? dy * scale : 0 (dropout's backward).
    // act'(y) from the forward output: relu y > 0, sigmoid y (1 - y), tanh 1 - y^2, linear 1.
    void (*act_backward)(size_t rows, size_t c0, size_t c1, size_t ld, float* dz, const float* dy, const float* y,
                         const uint8_t* mask, float scale, Act act);

    // bits (ceil(k/64) words): bit p set when x[p] != 0. returns whether some x[p] is NaN or +-Inf:
    // the trainer's scan of each batch doubles as fit's input check (Mlp::train_epoch, check_input).
    bool (*nonzero_bits)(const float* x, size_t k, uint64_t* bits);
    // true when some x[p], p < n, is NaN or +-Inf (exponent bits all ones); one streaming pass.
    bool (*any_nonfinite)(const float* x, size_t n);

    // adam over a (rows, cols) block of parameters with row stride ld, one pass: w, m, v (and vhat
    // when amsgrad) updated in place. also adds sum(w^2) and sum(|w|) of the updated weights (the
    // next step's penalty) to *sum_sq and *sum_abs: summed per vector lane, then in lane order into
    // the doubles every 64 rows and at the end.
    void (*adam)(size_t rows, size_t cols, size_t ld, float* w, const float* g, float* m, float* v, float* vhat,
                 const OptCoef& c, double* sum_sq, double* sum_abs);
    // sgd with optional (nesterov) momentum on the same kind of block; mom may be null when momentum == 0.
    void (*sgd)(size_t rows, size_t cols, size_t ld, float* w, const float* g, float* mom, const OptCoef& c,
                double* sum_sq, double* sum_abs);

    // inverted dropout in place on columns [c0, c1) of x (rows, width): keep element e = r*width + j
    // when philox_word(seed, stream, step, e) < keep_threshold, then scale it; mask gets 1/0 there.
    void (*dropout_forward)(size_t rows, size_t width, size_t c0, size_t c1, float* x, uint8_t* mask, uint64_t seed,
                            uint32_t stream, uint64_t step, uint64_t keep_threshold, float scale);

    // the first layer's sweep (sweep.h). cols (IN, bit_words(B)) for the features of row-bitmap words
    // [w0, w1): bit r of feature p set when row r's bitmap (row_bits + r * words) has bit p.
    void (*column_bits)(const uint64_t* row_bits, size_t B, size_t words, size_t w0, size_t w1, size_t IN,
                        uint64_t* cols);
    // on `width` columns:
    // g (p1 - p0, width), row stride ldg, = rows p0 .. p1-1 of the weight gradient x^T . dz, where
    // cols (IN, bw words) has bit r of feature p set when x_r[p] != 0; each row sums over those r increasing.
    void (*sparse_weight_grad)(size_t p0, size_t p1, size_t width, const uint64_t* cols, size_t bw,
                               const float* const* xrows, const float* dz, size_t ldz, float* g, size_t ldg);
    // sparse_weight_grad of rows [p0, p1) on one full panel (kColBlock columns) fused with adam on those
    // rows (rows p1 - p0, cols = ld = kColBlock; w, m, v, vhat point at row p0): equal to the two calls.
    // with second != 0, two panels at once: the next kColBlock columns of dz belong to a second panel
    // whose row p0 is `second` floats after the first's (in w, m, v, vhat); its penalty sums go to
    // sum_sq[1] and sum_abs[1]. equal to one call per panel (each row's set bits are walked once).
    void (*sparse_grad_adam)(size_t p0, size_t p1, const uint64_t* cols, size_t bw, const float* const* xrows,
                             const float* dz, size_t ldz, float* w, float* m, float* v, float* vhat, size_t second,
                             const OptCoef& c, double* sum_sq, double* sum_abs);
    // y (rows, width), row stride ldy: adds features [p0, p1) of x . w to y (to 0 when first), over the
    // bits set in each row's bitmap (bits + r * words) in increasing order; w row p is w + p*ldw. on the
    // last chunk y = act(y + bias) with act linear or relu: equal to gemm_nn over all chunks at once.
    void (*sparse_forward_chunk)(size_t rows, size_t width, size_t p0, size_t p1, const uint64_t* bits, size_t words,
                                 const float* const* xrows, const float* w, size_t ldw, const float* bias, Act act,
                                 bool first, bool last, float* y, size_t ldy);
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

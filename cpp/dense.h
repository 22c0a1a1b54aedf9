// dense.h: the dense layer, forward and backward, fused with its activation; team-aware (parallel.h).
//
//   forward   y (B, OUT) = act(x (B, IN) . w (IN, OUT) + b (OUT))       act: linear or relu fused in
//             the gemm epilogue; sigmoid and tanh in a second pass; softmax belongs to loss.h.
//   backward  dz (B, OUT) = dy * act'(y)                                   (act'(y) from the output)
//             dw (IN, OUT) = x^T . dz,  db (OUT) = sum_b dz,  dx (B, IN) = dz . w^T
//
// every function computes the columns its thread owns (owned_cols in parallel.h) and places no
// barrier: the caller puts one wherever a later phase reads another thread's columns.
//
// x is read through row pointers (xrows[b] -> IN floats) so the trainer can feed data-set rows in a
// shuffled order without copying them. The sparse-input variant (MNIST pixels are 81% zero) skips
// zero inputs in the forward (see dense_forward_sparse) and every batch row whose inputs are zero
// across a group of kFeatureGroup features in the weight gradient; skipped terms are exact zeros, so
// both variants give the same sums.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common.h"

namespace pyreg {

inline size_t bit_words(size_t n) { return (n + 63) / 64; }

// a kernel w (IN, OUT) in one of two layouts, addressed by column block p (columns [64p, 64p + 64)):
//   keras   row-major (IN, OUT) as keras stores it; block p starts at base + 64p, row stride OUT.
//           the standalone kernels (pyreg.kernels) use it.
//   panels  block p is its own row-major (IN, width_p) panel at base + p * IN * 64. the trainer's
//           arena uses it, so that the columns a thread owns are contiguous memory.
template <class T>
struct KernelView {
    T* base;
    size_t in, out;
    bool panels;
    size_t blocks() const { return (out + kColBlock - 1) / kColBlock; }
    size_t width(size_t p) const { return std::min(kColBlock, out - p * kColBlock); }
    T* block(size_t p) const { return panels ? base + p * in * kColBlock : base + p * kColBlock; }
    size_t ld(size_t p) const { return panels ? width(p) : out; }
    T& at(size_t i, size_t j) const { return block(j / kColBlock)[i * ld(j / kColBlock) + j % kColBlock]; }
};
using Weights = KernelView<const float>;
using WeightGrads = KernelView<float>;
constexpr size_t kFeatureGroup = 4;  // features per weight-gradient tile of the sparse path (divides 64)

// where one batch of inputs is non-zero, for the sparse path.
struct SparseInput {
    uint64_t* row_bits;     // (B, bit_words(IN)): bit i of row b set when x[b][i] != 0
    uint64_t* group_rows;   // (groups, bit_words(B)), groups = ceil(IN / kFeatureGroup): bit b set when
                            //   row b is non-zero somewhere in the group's features
    uint32_t* scratch;      // (threads, scratch_stride): each thread's index list
    size_t scratch_stride;  // >= max(IN, B)
};

// sparse input, phase 1 (rows split between threads): row_bits of this thread's rows; returns whether
// one of them holds a NaN or Inf.
bool sparse_scan_rows(SparseInput sp, const float* const* xrows, size_t B, size_t IN);
// sparse input, phase 2 (after a barrier): group_rows of this thread's share of the features.
void sparse_scan_groups(SparseInput sp, size_t B, size_t IN);

// y (B, OUT), this thread's columns, overwritten. w is (IN, OUT) in either layout.
void dense_forward(float* y, const float* const* xrows, Weights w, const float* b, size_t B, Act act);
// as dense_forward, skipping zero inputs; needs row_bits (phase 1 done and a barrier passed). up to
// kSparseChunkRows rows it walks the features in L1-sized chunks, each row adding only its non-zero
// inputs; above, it runs the gemm on 4-row tiles over their union of non-zero inputs.
constexpr size_t kSparseChunkRows = 256;
void dense_forward_sparse(float* y, SparseInput sp, const float* const* xrows, Weights w, const float* b, size_t B,
                          Act act);

// dz (B, OUT) = dy * act'(y), this thread's columns; in place when dz == dy. mask (B, OUT) optional:
// dropout keep-mask applied to dy first, with `scale` (= 1/(1-rate)).
void activation_backward(float* dz, const float* dy, const float* y, const uint8_t* mask, float scale, size_t B,
                         size_t OUT, Act act);

// dw (IN, OUT) and db (OUT), this thread's columns, overwritten or accumulated, from its columns of dz.
void dense_backward_params(WeightGrads dw, float* db, const float* dz, const float* const* xrows, size_t B,
                           bool accumulate);
// the same after a sparse-input forward (needs group_rows); features with no non-zero in the batch get a
// zero gradient (or nothing added when accumulating).
void dense_backward_params_sparse(WeightGrads dw, float* db, const float* dz, SparseInput sp,
                                  const float* const* xrows, size_t B, bool accumulate);

// db (OUT) = (or +=) the sum over b of dz (B, OUT), columns [c0, c1), summed in row order; no-op when db is null.
void bias_grad(float* db, const float* dz, size_t B, size_t OUT, size_t c0, size_t c1, bool accumulate);

// dx (B, IN) = dz . w^T for this thread's columns of dx (its columns of the layer below), overwritten or
// accumulated; reads every column of dz (barrier before). wt (OUT, IN) is scratch for w's transpose
// (each thread fills and reads only its own columns). When y_in is given, dx is then turned into the
// layer below's dz in place: dx * mask_in * scale_in * act_in'(y_in) (see activation_backward).
void dense_backward_input(float* dx, const float* const* dzrows, Weights w, float* wt, size_t B, bool accumulate,
                          const float* y_in = nullptr, const uint8_t* mask_in = nullptr, float scale_in = 1.0f,
                          Act act_in = Act::linear);
// the same for the columns c of dx, whoever owns them (the trainer's narrow-top step: one thread, all).
void dense_backward_input_cols(Range c, float* dx, const float* const* dzrows, Weights w, float* wt, size_t B,
                               bool accumulate, const float* y_in, const uint8_t* mask_in, float scale_in, Act act_in);

// the naive reference (one thread, triple loop, float accumulation in the same order): for tests.
void dense_forward_ref(float* y, const float* x, const float* w, const float* b, size_t B, size_t IN, size_t OUT,
                       Act act);

}  // namespace pyreg

// sweep.h: the first layer's fused step on sparse input (the trainer's hot path for MNIST).
//
// After the backward pass has produced dz (B, OUT) of layer 0, each thread makes one pass over the
// rows (input features) of the kernel panels it owns, kOptRows rows at a time:
//   1. g (rows, width) = those rows of x^T . dz, summed only over the batch rows that are non-zero at
//      each feature, into a small buffer that stays in L1;
//   2. the optimizer update of those kernel rows from g (update_rows, exactly as optimizer_step);
//   3. while the updated rows are still in L1, their share of the NEXT batch's layer-0 output
//      y_next (Bn, OUT), summed over the next rows' non-zero features.
// The weight gradient never goes to memory, the kernel is read once per step instead of three times,
// and no work is spent on zero inputs. Every sum runs in the same order as the unfused path (the
// gemm kernels sum over increasing batch rows and increasing features), so the weights, the outputs
// and the penalty are bitwise the same. Team-aware (parallel.h), no barrier.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.h"
#include "optim.h"

namespace pyreg {

// cols (IN, bit_words(B)): bit r of feature p set when row r's bitmap (row_bits, (B, bit_words(IN)))
// has bit p. team-aware: threads split the 64-feature words; barrier before reading another's.
void sparse_column_bits(const uint64_t* row_bits, size_t B, size_t IN, uint64_t* cols);

struct SweepBatch {
    size_t rows = 0;                       // 0: no next batch (the sweep only updates)
    const float* const* xrows = nullptr;   // (rows) input rows, IN floats each
    const uint64_t* bits = nullptr;        // this batch: cols (IN, bit_words(rows)); next: (rows, bit_words(IN))
};

struct SweepLayer {
    size_t in, out;         // layer 0's kernel (in, out) in column panels, bias (out)
    Act act;                // linear or relu
    float* y_next;          // (next.rows, out): the next batch's layer-0 output, this thread's columns
    const float* dz;        // (cur.rows, out): d loss / d pre-activation of layer 0
};

// updates every layer-0 segment this thread owns (bias first: the next batch's output adds it) and
// fills y_next; penalty_segments gets those segments' penalties. scratch: gbuf kOptRows * kColBlock
// floats, ybuf 2 * next.rows * kColBlock floats (two panels at once, see KernelTable::sparse_grad_adam).
// ahead (rows, xrows only): the batch after next, whose rows (anywhere in the data set, so in DRAM)
// are prefetched into L2 a few lines per chunk, this thread's share, for the next step's scan.
void first_layer_sweep(const OptimizerConfig& cfg, const OptCoef& coef, const std::vector<Segment>& segments,
                       float* w, OptimizerState st, double* penalty_segments, const SweepLayer& layer,
                       const SweepBatch& cur, const SweepBatch& next, const SweepBatch& ahead, float* gbuf,
                       float* ybuf);

}  // namespace pyreg

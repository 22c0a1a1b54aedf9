// sweep.cpp: the first layer's fused gradient, update and next-batch forward (sweep.h).
#include "sweep.h"

#include <algorithm>
#include <cstring>

#include "dense.h"
#include "parallel.h"
#include "simd.h"

namespace pyreg {

// updated kernel rows per next-batch forward call: 3 optimizer chunks. longer feature loops mean fewer
// mispredicted loop exits, until the rows no longer stay in L1/L2.
// kept apart from the fused gradient + update on purpose: summed inside it, the stores into the
// output would cost the divider-bound update loop its lookahead (bench/sweep_kernels.cpp times each).
constexpr size_t kForwardRows = 3 * kOptRows;

void sparse_column_bits(const uint64_t* row_bits, size_t B, size_t IN, uint64_t* cols) {
    const size_t words = bit_words(IN);
    const Range mine = my_units(words);
    kernels().column_bits(row_bits, B, words, mine.begin, mine.end, IN, cols);
}

void first_layer_sweep(const OptimizerConfig& cfg, const OptCoef& coef, const std::vector<Segment>& segments,
                       float* w, OptimizerState st, double* penalty_segments, const SweepLayer& layer,
                       const SweepBatch& cur, const SweepBatch& next, const SweepBatch& ahead, float* gbuf,
                       float* ybuf) {
    const KernelTable& K = kernels();
    const Range mine = owned_cols(layer.out);
    auto owned = [&](const Segment& s) { return s.layer == 0 && s.owner_col >= mine.begin && s.owner_col < mine.end; };
    // prefetch plan: the rows of the batch after next that this thread will scan (helper_units, as
    // Mlp::scan_next_rows), spread evenly over its chunks
    constexpr size_t kLineFloats = kCacheLine / sizeof(float);
    const Range ahead_rows = helper_units(ahead.rows);
    const size_t lines_per_row = (layer.in + kLineFloats - 1) / kLineFloats;
    const size_t lines_total = (ahead_rows.end - ahead_rows.begin) * lines_per_row;
    size_t chunks_total = 0;
    for (const Segment& seg : segments)
        if (!seg.is_bias && owned(seg)) chunks_total += (seg.rows + kOptRows - 1) / kOptRows;
    const size_t lines_per_chunk = chunks_total ? (lines_total + chunks_total - 1) / chunks_total : 0;
    size_t line = 0;
    auto prefetch_some = [&] {
        for (size_t i = 0; i < lines_per_chunk && line < lines_total; ++i, ++line) {
            const float* row = ahead.xrows[ahead_rows.begin + line / lines_per_row];
            __builtin_prefetch(row + (line % lines_per_row) * kLineFloats, 0, 2);
        }
    };
    const float* bias = nullptr;
    for (size_t s = 0; s < segments.size(); ++s) {  // the biases: db, then their update
        const Segment& seg = segments[s];
        if (!seg.is_bias || seg.layer != 0) continue;
        bias = w + seg.offset - seg.owner_col;
        if (!owned(seg)) continue;
        bias_grad(gbuf, layer.dz + seg.owner_col, cur.rows, layer.out, 0, seg.cols, false);
        double sq = 0.0, ab = 0.0;
        update_rows(cfg, coef, seg, w, gbuf, st, 0, 1, &sq, &ab);
        penalty_segments[s] = segment_penalty(seg, sq, ab);
    }
    const size_t bw = bit_words(cur.rows), words = bit_words(layer.in);
    for (size_t s = 0; s < segments.size(); ++s) {  // the kernel panels, kOptRows rows at a time
        const Segment& seg = segments[s];
        if (seg.is_bias || !owned(seg)) continue;
        const size_t j0 = seg.owner_col, width = seg.cols;
        // adam on a full panel: gradient and update in one pass (KernelTable::sparse_grad_adam), and on two
        // at once when this thread owns the next one too (full, its rows right after these)
        const bool fused = cfg.kind == OptKind::adam && width == kColBlock;
        const Segment* next_seg = s + 1 < segments.size() ? &segments[s + 1] : nullptr;
        const bool pair = fused && next_seg && !next_seg->is_bias && owned(*next_seg) && next_seg->cols == kColBlock &&
                          next_seg->rows == seg.rows && next_seg->offset == seg.offset + seg.rows * kColBlock;
        const size_t np = pair ? 2 : 1, second = pair ? next_seg->offset - seg.offset : 0;
        const OptCoef c = segment_coef(coef, seg);  // a layer's panels share their regularisation
        double sq[2] = {0.0, 0.0}, ab[2] = {0.0, 0.0};
        size_t f0 = 0;  // features not yet added to the next batch's output
        for (size_t r0 = 0; r0 < seg.rows; r0 += kOptRows) {
            const size_t r1 = std::min(seg.rows, r0 + kOptRows);
            for (size_t n = 0; n < np; ++n) prefetch_some();  // the plan counts each panel's chunks
            if (fused) {
                const size_t o = seg.offset + r0 * width;
                K.sparse_grad_adam(r0, r1, cur.bits, bw, cur.xrows, layer.dz + j0, layer.out, w + o, st.m + o, st.v + o,
                                   st.vhat ? st.vhat + o : nullptr, second, c, sq, ab);
            } else {
                K.sparse_weight_grad(r0, r1, width, cur.bits, bw, cur.xrows, layer.dz + j0, layer.out, gbuf, width);
                update_rows(cfg, coef, seg, w, gbuf, st, r0, r1, sq, ab);
            }
            // the next batch's output over kForwardRows updated rows at a time (fewer, longer loops);
            // partial sums in a private buffer: y_next's lines are read by the other threads
            if (next.rows > 0 && (r1 - f0 >= kForwardRows || r1 == seg.rows)) {
                for (size_t n = 0; n < np; ++n) {
                    const size_t jn = j0 + n * kColBlock;
                    K.sparse_forward_chunk(next.rows, width, f0, r1, next.bits, words, next.xrows,
                                           w + seg.offset + n * second, width, bias ? bias + jn : nullptr, layer.act,
                                           f0 == 0, r1 == seg.rows, ybuf + n * next.rows * kColBlock, width);
                }
                f0 = r1;
            }
        }
        for (size_t n = 0; n < np; ++n) {
            const float* yb = ybuf + n * next.rows * kColBlock;
            for (size_t r = 0; r < next.rows; ++r)
                std::memcpy(layer.y_next + r * layer.out + j0 + n * kColBlock, yb + r * width, width * sizeof(float));
            penalty_segments[s + n] = segment_penalty(segments[s + n], sq[n], ab[n]);
        }
        s += np - 1;
    }
}

}  // namespace pyreg

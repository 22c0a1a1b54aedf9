// mlp_internal.h: the trainer's private types, shared by mlp.cpp (set-up, forward, backward, inference)
// and train_epoch.cpp (the epoch loop).
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "common.h"
#include "dense.h"
#include "mlp.h"

namespace pyreg {

// workspace: every buffer one batch needs, allocated once per (fit, batch size), reused by every batch.

struct Mlp::Workspace {
    size_t capacity = 0;  // rows
    bool training = false;
    std::vector<aligned_vector<float>> act;    // per layer (rows, OUT_l): output, after dropout in training
    std::vector<aligned_vector<float>> pre;    // per layer (rows, OUT_l): output before dropout (sigmoid/tanh
                                               // only) or noise (any activation but linear)
    std::vector<aligned_vector<float>> grad;   // per layer (rows, OUT_l): d loss / d pre-activation
    std::vector<aligned_vector<uint8_t>> mask; // per layer (rows, OUT_l): dropout keep-mask
    std::vector<aligned_vector<float>> noise;  // per layer (rows, OUT_l): a noise layer's d out / d in (noise.h)
    std::vector<aligned_vector<float>> wt;     // per layer (OUT_l, IN_l): kernel transpose, l >= 1
    std::vector<std::vector<const float*>> act_rows, grad_rows;  // per layer (rows) row pointers
    std::vector<const float*> x_rows;      // (rows) the input batch, pointing into the data set
    aligned_vector<float> xin;                // (rows, IN) input copy when the input has dropout
    aligned_vector<uint8_t> xin_mask;         // (rows, IN)
    std::vector<const float*> xin_rows;    // (rows)
    size_t threads = 0;                    // thread slices in scratch
    aligned_vector<uint64_t> row_bits;        // (rows, bit_words(IN)) sparse input: non-zero bitmaps
    aligned_vector<uint64_t> group_rows;      // (feature groups, bit_words(rows)) sparse input, for dW
    aligned_vector<uint32_t> scratch;         // (threads, max(IN, rows)) sparse input: index lists
    aligned_vector<float> loss_rows;          // (rows)
    aligned_vector<uint8_t> correct_rows;     // (rows)
    std::vector<int32_t> labels;           // (rows)
    // the fused first-layer sweep (sweep.h): the next batch, seen one step ahead, and scratch.
    std::vector<const float*> x_rows_next;  // (rows)
    std::vector<const float*> x_rows_ahead; // (rows) the batch after next: prefetched by the sweep
    std::vector<int32_t> labels_next;       // (rows)
    aligned_vector<uint64_t> row_bits_next;    // (rows, bit_words(IN))
    aligned_vector<uint64_t> col_bits;         // (IN, bit_words(rows)) this batch's non-zeros, by feature
    aligned_vector<float> gbuf;  // (threads, (kOptRows + 2 * rows) * kColBlock) weight-gradient rows, partial outputs
    // the row scans' NaN/Inf findings (train_epoch, check_input): this batch's rows, the next batch's.
    std::atomic<bool> bad_input{false}, bad_input_next{false};
    SparseInput sparse() { return {row_bits.data(), group_rows.data(), scratch.data(), scratch.size() / threads}; }
};

// the profile's phases in Mlp::Phase's order: their names, and whether they have a slot per layer.
struct PhaseName {
    Mlp::Phase phase;
    const char* name;
    bool per_layer;
};
inline constexpr PhaseName kPhaseNames[] = {
    {Mlp::Phase::setup, "setup", false},
    {Mlp::Phase::forward, "forward", true},
    {Mlp::Phase::loss, "loss", false},
    {Mlp::Phase::backward, "backward", true},
    {Mlp::Phase::optimizer, "optimizer", false},
    {Mlp::Phase::report, "report", false},
    {Mlp::Phase::column_bits, "column_bits", false},
    {Mlp::Phase::row_scans, "row_scans", false},
    {Mlp::Phase::prefetch, "prefetch", false},
    {Mlp::Phase::wait, "wait", false},
};
constexpr bool phase_names_in_order() {
    size_t i = 0;
    for (const PhaseName& p : kPhaseNames)
        if ((size_t)p.phase != i++) return false;
    return i == (size_t)Mlp::Phase::count;
}
static_assert(phase_names_in_order(), "kPhaseNames must name every Mlp::Phase, in order");

// profiling (Mlp::set_profiling): each team thread adds the time since its own previous mark to a
// phase slot of its own. a thread's slots start on a cache line of their own and fill whole lines, so
// the threads' marks never write a line another thread writes.
struct Mlp::PhaseClock {
    using Clock = std::chrono::steady_clock;
    struct Thread {
        Clock::time_point last{};
        aligned_vector<double> seconds;  // (slots rounded up to a cache line)
    };
    std::vector<std::string> names;  // per slot: "setup", "forward_0", ...
    size_t first[(size_t)Phase::count] = {};  // each phase's first slot
    bool per_layer[(size_t)Phase::count] = {};
    std::vector<Thread> threads;

    // the slots of a model with `layers` layers, laid out from kPhaseNames alone.
    explicit PhaseClock(size_t layers) {
        for (size_t i = 0; i < (size_t)Phase::count; ++i) {
            const PhaseName& p = kPhaseNames[i];
            first[i] = names.size();
            per_layer[i] = p.per_layer;
            if (!p.per_layer) {
                names.push_back(p.name);
                continue;
            }
            for (size_t l = 0; l < layers; ++l) names.push_back(std::string(p.name) + "_" + std::to_string(l));
        }
    }
    size_t slot(Phase p, size_t layer) const {
        return first[(size_t)p] + (per_layer[(size_t)p] ? layer : 0);
    }
    // before a team of `team` threads starts: a clock for each (kept, with its sums, when teams shrink)
    void size_for(int team) {
        constexpr size_t kLine = kCacheLine / sizeof(double);
        const size_t padded = (names.size() + kLine - 1) / kLine * kLine;
        while ((int)threads.size() < team) threads.push_back(Thread{{}, aligned_vector<double>(padded, 0.0)});
    }
    void start(int rank) { threads[(size_t)rank].last = Clock::now(); }
    void mark(int rank, size_t slot) {
        Thread& t = threads[(size_t)rank];
        const auto now = Clock::now();
        t.seconds[slot] += std::chrono::duration<double>(now - t.last).count();
        t.last = now;
    }
};

}  // namespace pyreg

// train_epoch.cpp: one training epoch on one thread team: batch order, the step loop (general and
// narrow-top steps, sweep.h), the deferred input check and its roll-back.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <numeric>

#include "dropout.h"
#include "fpenv.h"
#include "input_check.h"
#include "loss.h"
#include "mlp.h"
#include "mlp_internal.h"
#include "parallel.h"
#include "rng.h"
#include "sweep.h"

namespace pyreg {

namespace {

// fills perm with 0..N-1, shuffled by fisher-yates from the (seed, shuffle stream, epoch) words.
void epoch_order(std::vector<uint32_t>& perm, size_t N, bool shuffle, uint64_t seed, uint64_t epoch) {
    perm.resize(N);
    std::iota(perm.begin(), perm.end(), 0u);
    if (!shuffle || N < 2) return;
    Rng rng{seed, kShuffleStream, epoch};
    for (size_t i = N - 1; i > 0; --i) std::swap(perm[i], perm[(size_t)rng.next_below(i + 1)]);
}

// the batch's loss as keras reports it, mean cross-entropy plus the regularisation penalty, summed in
// row order: every thread (and the master before updating the output layer) gets the same value.
double batch_loss(const float* loss_rows, size_t rows, double penalty) {
    double ce = 0.0;
    for (size_t r = 0; r < rows; ++r) ce += loss_rows[r];
    return ce / (double)rows + penalty;
}

}  // namespace

void Mlp::scan_next_rows(Workspace& ws, size_t rows, int part) {
    // the helper threads' rows (the same the sweep prefetched), in three parts placed beside the output
    // layer's forward, loss and backward.
    const Range rows_mine = helper_units(rows);
    const Range piece = split_range(rows_mine.end - rows_mine.begin, part, kScanParts, 1);
    const Range mine{rows_mine.begin + piece.begin, rows_mine.begin + piece.end};
    const KernelTable& K = kernels();
    const size_t IN = spec_.input_dim, words = bit_words(IN);
    bool bad = false;
    for (size_t b = mine.begin; b < mine.end; ++b)
        bad |= K.nonzero_bits(ws.x_rows_next[b], IN, ws.row_bits_next.data() + b * words);
    if (bad) ws.bad_input_next.store(true, std::memory_order_relaxed);
}

struct Mlp::State {
    aligned_vector<float> params, m, v, vhat;
    std::vector<double> penalty_segments;
    int64_t iterations;
    uint64_t dropout_step;
};

Mlp::State Mlp::save_state() const {
    return {params_, m_, v_, vhat_, penalty_segments_, iterations_, dropout_step_};
}

void Mlp::restore_state(const State& s) {
    // copied back into the same buffers: python holds views of the arena (pyreg/_arena.py)
    std::copy(s.params.begin(), s.params.end(), params_.begin());
    std::copy(s.m.begin(), s.m.end(), m_.begin());
    std::copy(s.v.begin(), s.v.end(), v_.begin());
    std::copy(s.vhat.begin(), s.vhat.end(), vhat_.begin());
    penalty_segments_ = s.penalty_segments;
    iterations_ = s.iterations;
    dropout_step_ = s.dropout_step;
}

// the narrow-top step (train_epoch): two layers, the output layer within one column block (thread 0 owns
// all of it), giving logits (softmax or linear) without dropout, as the study's models.
bool Mlp::narrow_top() const {
    if (spec_.layers.size() != 2) return false;
    const LayerSpec& top = spec_.layers[1];
    return top.units <= kColBlock && top.dropout == 0.0 && (top.act == Act::softmax || top.act == Act::linear);
}

void Mlp::narrow_top_step(Workspace& ws, const StepRows& step, int team, const OptCoef& coef, double penalty,
                          const TrainOptions& opt) {
    // one barrier (the caller's) instead of four: the master runs the whole output layer (forward, loss
    // and gradient over every row, its weight gradient, and layer 0's dz over every column, relu and
    // dropout mask fused), the others meanwhile take this batch's column bitmaps, scan the next batch
    // and prefetch the one after; with one thread, it does both. each barrier costs its latency and the
    // wait for the slowest thread, most of all in an oversubscribed team. the output layer stays on one
    // thread: its rows split between threads would cost more in cross-core reads than they save.
    const size_t rows = step.rows, next_rows = step.next, ahead_rows = step.ahead;
    const bool master = team_rank() == 0;
    const LayerSpec& S0 = spec_.layers[0];
    const LayerSpec& S1 = spec_.layers[1];
    constexpr size_t kLineFloats = kCacheLine / sizeof(float);
    if (master) {
        // the other threads' columns of layer 0's output and mask (read) and dz (written) are in their
        // caches: fetched at once
        for (size_t i = 0; i < rows * S0.units; i += kLineFloats) {
            __builtin_prefetch(ws.act[0].data() + i, 0, 3);
            __builtin_prefetch(ws.grad[0].data() + i, 1, 3);
        }
        if (S0.dropout > 0.0)
            for (size_t i = 0; i < rows * S0.units; i += kCacheLine) __builtin_prefetch(ws.mask[0].data() + i, 0, 3);
        dense_forward(ws.act[1].data(), ws.act_rows[0].data(), kernel(1), bias(1), rows, Act::linear);  // logits
        mark(Phase::forward, 1);
        softmax_xent_rows({0, rows}, ws.grad[1].data(), ws.loss_rows.data(), ws.correct_rows.data(), ws.act[1].data(),
                          ws.labels.data(), classes(), 1.0f / (float)rows, label_smoothing_);
        mark(Phase::loss);
        float* db = S1.use_bias ? grads_.data() + bias_off_[1] : nullptr;
        dense_backward_params(kernel_grad(1), db, ws.grad[1].data(), ws.act_rows[0].data(), rows, false);
        const bool drop = S0.dropout > 0.0;
        dense_backward_input_cols({0, S0.units}, ws.grad[0].data(), ws.grad_rows[1].data(), kernel(1), ws.wt[1].data(),
                                  rows, false, ws.act[0].data(), drop ? ws.mask[0].data() : nullptr,
                                  drop ? keep_scale(S0.dropout) : 1.0f, S0.act);
        // the output layer's update, here where the master would otherwise wait for the others' scans
        // at the barrier. dz above has read the weights before it. skipped as the caller will skip
        // every update: a non-finite loss (batch_loss, as the caller) or flagged input rows.
        const bool bad_loss = opt.stop_on_nonfinite && !std::isfinite(batch_loss(ws.loss_rows.data(), rows, penalty));
        if (!bad_loss && !ws.bad_input.load(std::memory_order_relaxed))
            optimizer_step(opt_, coef, segments_, params_.data(), grads_.data(), opt_state(), penalty_segments_.data(),
                           0);
        mark(Phase::backward, 1);
    }
    const size_t IN = spec_.input_dim, words = bit_words(IN);
    // this batch's column bitmaps: the master's when alone or with one helper (whose scans and prefetch
    // then take about as long as the master's output layer and the bitmaps together, so neither waits
    // long at the barrier), else the helpers'.
    const bool master_bits = team <= 2;
    if (master_bits == master) {
        const Range w = master_bits ? Range{0, words} : helper_units(words);
        kernels().column_bits(ws.row_bits.data(), rows, words, w.begin, w.end, IN, ws.col_bits.data());
        mark(Phase::column_bits);
    }
    if (master && team > 1) return;
    for (int part = 0; part < kScanParts; ++part) scan_next_rows(ws, next_rows, part);
    mark(Phase::row_scans);
    if (team == 1) return;  // one thread: the sweep spreads the prefetch over its chunks
    const Range r = helper_units(ahead_rows);
    for (size_t b = r.begin; b < r.end; ++b)
        for (size_t f = 0; f < IN; f += kLineFloats) __builtin_prefetch(ws.x_rows_ahead[b] + f, 0, 2);
    mark(Phase::prefetch);
}

bool Mlp::can_sweep(bool sparse) const {
    const Act a0 = spec_.layers[0].act;
    const bool linear_or_relu = a0 == Act::relu || a0 == Act::linear || (a0 == Act::softmax && spec_.layers.size() == 1);
    return sparse && spec_.input_dropout == 0.0 && linear_or_relu && !has_noise();
}

EpochResult Mlp::train_epoch(const float* x, const int32_t* y, size_t N, const TrainOptions& opt,
                             const ProgressFn& progress) {
    PYREG_CHECK(opt.batch_size > 0, "batch_size must be positive; got " << opt.batch_size);
    PYREG_CHECK(N > 0, "cannot train on 0 samples");
    const size_t B = std::min(opt.batch_size, N), IN = spec_.input_dim, K = classes();
    const size_t steps = (N + B - 1) / B;
    const int T = opt.threads > 0 ? opt.threads : default_threads();
    ensure_workspace(train_ws_, B, true, T);
    Workspace& ws = *train_ws_;
    epoch_order(perm_, N, opt.shuffle, seed_, opt.epoch);
    // noise on the input other than GaussianDropout makes its zeros non-zero: the dense path
    const NoiseKind in_noise = spec_.input_noise.active() ? spec_.input_noise.kind : NoiseKind::none;
    const bool sparse = choose_sparse(x, N, IN, opt.sparse) &&
                        (in_noise == NoiseKind::none || in_noise == NoiseKind::gaussian_dropout);
    EpochResult res;
    res.used_sparse = sparse;
    // fit's NaN/Inf check of x, when left to the trainer: the sparse path scans every row of x as it is
    // before training on it, so its scans check for free (a separate pass over x would cost a
    // noticeable part of an epoch), and a failed epoch puts the saved state back. other paths check
    // up front.
    const bool check_in_scans = opt.check_input && sparse && !input_transformed();
    if (opt.check_input && !check_in_scans && first_nonfinite(x, N * IN, nullptr, T) >= 0) {
        res.bad_input = true;
        return res;
    }
    State saved;
    if (check_in_scans) saved = save_state();
    ws.bad_input.store(false);
    ws.bad_input_next.store(false);
    double pen = penalty();

    double loss_sum = 0.0, correct_sum = 0.0;
    bool stop = false;
    std::exception_ptr error;

    const size_t L = spec_.layers.size();
    if (clock_) clock_->size_for(T);
    // the master thread points the batch's rows into the data set (no copy) and gathers its labels.
    auto set_batch = [&](size_t s, std::vector<const float*>& rows_out, std::vector<int32_t>& labels_out) {
        const size_t b0 = s * B, rows = std::min(B, N - b0);
        for (size_t r = 0; r < rows; ++r) {
            const size_t i = perm_[b0 + r];
            rows_out[r] = x + i * IN;
            labels_out[r] = y[i];
        }
    };
    // the sweep (sweep.h) fuses layer 0's gradient and update, and with lookahead the next batch's
    // layer-0 forward: the next batch is then set, scanned and half computed one step ahead.
    const bool sweep = can_sweep(sparse);
    // constraints change layer 0's columns after the sweep's update, and activity penalties need every
    // layer's output: neither fits the look-ahead (nor so the narrow-top step)
    const bool lookahead = opt.lookahead && sweep && !needs_general_step();
    const bool constrained = std::any_of(spec_.layers.begin(), spec_.layers.end(), [](const LayerSpec& S) {
        return S.kernel_constraint.active() || S.bias_constraint.active();
    });
    const bool activity = std::any_of(spec_.layers.begin(), spec_.layers.end(),
                                      [](const LayerSpec& S) { return S.has_activity(); });
    const LayerSpec& top = spec_.layers.back();
    res.used_sweep = sweep;
    const Act act0 = spec_.layers[0].act == Act::relu ? Act::relu : Act::linear;
    const bool narrow = lookahead && narrow_top();
    const double drop0 = spec_.layers[0].dropout;
    // the master points the batch after this one (look-ahead) and the one after that (prefetched) at
    // their rows; read from the next step on, after the barrier that ends this one.
    auto set_ahead = [&](size_t s) {
        if (lookahead && s + 1 < steps) set_batch(s + 1, ws.x_rows_next, ws.labels_next);
        const size_t ahead_rows = lookahead && s + 2 < steps ? std::min(B, N - (s + 2) * B) : 0;
        for (size_t r = 0; r < ahead_rows; ++r) ws.x_rows_ahead[r] = x + (size_t)perm_[(s + 2) * B + r] * IN;
    };
    SpinBarrier step_barrier;  // the steps' own barriers (forward and backward use omp's)
    run_team(T, [&] {
        const FlushDenormals ftz;  // as tensorflow's cpu kernels (fpenv.h)
        const bool master = team_rank() == 0;
        // the team openmp gave, which may be smaller than T (OMP_THREAD_LIMIT, OMP_DYNAMIC, a nested
        // region): the narrow steps share their side work by it, or some would be left undone
        const int team = team_size();
        if (clock_) clock_->start(team_rank());
        if (master) {
            set_batch(0, ws.x_rows, ws.labels);
            set_ahead(0);
            step_barrier.set_size(team_size());
        }
        team_barrier();
        bool layer0_ready = false;  // the previous step's sweep computed this batch's layer-0 output
        for (size_t s = 0; s < steps; ++s) {
            const size_t rows = std::min(B, N - s * B);
            const size_t next_rows = lookahead && s + 1 < steps ? std::min(B, N - (s + 1) * B) : 0;
            const size_t ahead_rows = lookahead && s + 2 < steps ? std::min(B, N - (s + 2) * B) : 0;
            const bool narrow_step = narrow && layer0_ready;
            mark(Phase::setup);
            const OptCoef coef = step_coefficients(opt_, iterations_);
            if (narrow_step) {
                narrow_top_step(ws, StepRows{rows, next_rows, ahead_rows}, team, coef, pen, opt);
                step_barrier.wait();
                mark(Phase::wait);
                if (!master) {  // this thread's columns of layer 0's dz, written by the master: fetched at once
                    const Range c = owned_cols(spec_.layers[0].units);
                    for (size_t r = 0; r < rows; ++r)
                        for (size_t j = c.begin; j < c.end; j += kCacheLine / sizeof(float))
                            __builtin_prefetch(ws.grad[0].data() + r * spec_.layers[0].units + j, 0, 3);
                }
            } else {
                forward(ws, rows, true, sparse, Fusion{sweep, layer0_ready, next_rows});
                softmax_xent(ws.grad[L - 1].data(), ws.loss_rows.data(), ws.correct_rows.data(),
                             ws.act.back().data(), ws.labels.data(), rows, K, 1.0f / (float)rows, label_smoothing_);
                if (activity) {
                    const Range r = my_units(rows);  // softmax_xent's rows
                    add_activity_loss(ws, r, ws.loss_rows.data());
                    if (top.has_activity())  // a linear output: its logits' gradient
                        add_activity_grad(ws.grad[L - 1].data() + r.begin * K, ws.act.back().data() + r.begin * K,
                                          r.end - r.begin, K, {0, K}, Act::linear, top.activity_l1, top.activity_l2,
                                          rows);
                }
                if (L > 1 && next_rows > 0) scan_next_rows(ws, next_rows, 1);
                mark(Phase::loss);
                step_barrier.wait();
                mark(Phase::wait);
            }
            // every thread sums the batch loss in the same order, so all agree on stopping without a barrier.
            const double loss = batch_loss(ws.loss_rows.data(), rows, pen);
            // this batch's rows were scanned before the barrier above, the next batch's are being scanned
            // (read by the master at the step's end): every thread reads the same value here.
            if (check_in_scans && ws.bad_input.load(std::memory_order_relaxed)) {
                if (master) res.bad_input = true;
                break;  // before any update
            }
            const bool bad = opt.stop_on_nonfinite && !std::isfinite(loss);
            if (master) {
                size_t correct = 0;
                for (size_t r = 0; r < rows; ++r) correct += ws.correct_rows[r];
                loss_sum += loss * (double)rows;
                correct_sum += (double)correct;
                res.seen += rows;
                res.steps = s + 1;
                if (bad) {
                    res.nonfinite = true;
                    res.nonfinite_step = s;
                }
            }
            mark(Phase::loss);
            if (bad) break;  // before any update: the weights stay as they were
            if (!narrow_step) backward(ws, rows, sparse, Fusion{sweep, layer0_ready, next_rows});
            if (sweep) {
                const SweepLayer layer{IN, spec_.layers[0].units, act0, ws.act[0].data(), ws.grad[0].data()};
                const SweepBatch cur{rows, ws.x_rows.data(), ws.col_bits.data()};
                const SweepBatch nxt{next_rows, ws.x_rows_next.data(), ws.row_bits_next.data()};
                // narrow steps on several threads prefetch the batch after next beside the output layer
                const bool prefetched = narrow_step && team > 1;
                const SweepBatch ahead{prefetched ? 0 : ahead_rows, ws.x_rows_ahead.data(), nullptr};
                float* sweep_buf = ws.gbuf.data() + (size_t)team_rank() * (kOptRows + 2 * B) * kColBlock;
                first_layer_sweep(opt_, coef, segments_, params_.data(), opt_state(), penalty_segments_.data(), layer,
                                  cur, nxt, ahead, sweep_buf, sweep_buf + kOptRows * kColBlock);
                // narrow steps skip the forward: the next batch's layer-0 dropout comes here, on the
                // columns this thread just computed (step counter: the next step's)
                if (narrow && next_rows > 0 && drop0 > 0.0)
                    dropout_forward(ws.act[0].data(), ws.mask[0].data(), next_rows, spec_.layers[0].units, drop0, seed_,
                                    1, dropout_step_ + 1);
                mark(Phase::backward, 0);
            }
            if (!narrow_step)  // narrow steps: layer 0 in the sweep, the output layer before the barrier
                optimizer_step(opt_, coef, segments_, params_.data(), grads_.data(), opt_state(),
                               penalty_segments_.data(), sweep ? 0 : -1);
            if (constrained) constrain_owned();  // after the update of this thread's columns (and the sweep's)
            mark(Phase::optimizer);
            step_barrier.wait();
            mark(Phase::wait);
            if (master) {
                if (constrained) constrain_master();
                pen = 0.0;
                for (double p : penalty_segments_) pen += p;
                ++iterations_;
                ++dropout_step_;
                if (progress) {
                    try {
                        const Progress p{s + 1, steps, res.seen, loss_sum / (double)res.seen,
                                         correct_sum / (double)res.seen};
                        if (!progress(p)) {
                            res.stopped = true;
                            stop = true;
                        }
                    } catch (...) {
                        error = std::current_exception();
                        stop = true;
                    }
                }
                if (!stop && next_rows > 0) {  // the batch set, scanned and begun during this step
                    std::swap(ws.x_rows, ws.x_rows_next);
                    std::swap(ws.labels, ws.labels_next);
                    std::swap(ws.row_bits, ws.row_bits_next);
                    ws.bad_input.store(ws.bad_input_next.exchange(false, std::memory_order_relaxed),
                                       std::memory_order_relaxed);
                    set_ahead(s + 1);
                } else if (!stop && s + 1 < steps) {
                    set_batch(s + 1, ws.x_rows, ws.labels);
                }
            }
            layer0_ready = next_rows > 0;
            mark(Phase::report);
            step_barrier.wait();
            mark(Phase::wait);
            if (stop) break;
        }
    });
    if (error) std::rethrow_exception(error);
    // an epoch that ended early (a NaN loss, a stop request) left rows unscanned: check them all now
    if (check_in_scans && !res.bad_input && res.steps < steps) res.bad_input = first_nonfinite(x, N * IN, nullptr, T) >= 0;
    if (res.bad_input) {
        if (check_in_scans) restore_state(saved);
        EpochResult failed;
        failed.used_sparse = sparse;
        failed.used_sweep = sweep;
        failed.bad_input = true;
        return failed;
    }
    res.loss = res.seen ? loss_sum / (double)res.seen : 0.0;
    res.accuracy = res.seen ? correct_sum / (double)res.seen : 0.0;
    return res;
}

}  // namespace pyreg

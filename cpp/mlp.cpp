// mlp.cpp: the native trainer: arena set-up, batch workspaces, and the epoch loop on one team.
#include "mlp.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <numeric>

#include "dropout.h"
#include "fpenv.h"
#include "input_check.h"
#include "loss.h"
#include "parallel.h"
#include "rng.h"
#include "sweep.h"

namespace pyreg {

namespace {

constexpr size_t kAlign = 16;  // floats: every arena part starts on a 64-byte boundary
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// fills perm with 0..N-1, shuffled by fisher-yates from the (seed, shuffle stream, epoch) words.
void epoch_order(std::vector<uint32_t>& perm, size_t N, bool shuffle, uint64_t seed, uint64_t epoch) {
    perm.resize(N);
    std::iota(perm.begin(), perm.end(), 0u);
    if (!shuffle || N < 2) return;
    Rng rng{seed, kShuffleStream, epoch};
    for (size_t i = N - 1; i > 0; --i) std::swap(perm[i], perm[(size_t)rng.next_below(i + 1)]);
}

bool needs_pre_dropout_copy(const LayerSpec& l) {
    return l.dropout > 0.0 && (l.act == Act::sigmoid || l.act == Act::tanh);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// workspace: every buffer one batch needs, allocated once per (fit, batch size), reused by every batch.

struct Mlp::Workspace {
    size_t capacity = 0;  // rows
    bool training = false;
    std::vector<aligned_vector<float>> act;    // per layer (rows, OUT_l): output, after dropout in training
    std::vector<aligned_vector<float>> pre;    // per layer (rows, OUT_l): output before dropout (sigmoid/tanh only)
    std::vector<aligned_vector<float>> grad;   // per layer (rows, OUT_l): d loss / d pre-activation
    std::vector<aligned_vector<uint8_t>> mask; // per layer (rows, OUT_l): dropout keep-mask
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
    aligned_vector<float> gbuf;  // (threads, (kOptRows + rows) * kColBlock) weight-gradient rows, partial outputs
    // the row scans' NaN/Inf findings (train_epoch, check_input): this batch's rows, the next batch's.
    std::atomic<bool> bad_input{false}, bad_input_next{false};
    SparseInput sparse() { return {row_bits.data(), group_rows.data(), scratch.data(), scratch.size() / threads}; }
};

Mlp::Mlp(const MlpSpec& spec, uint64_t seed) : spec_(spec), seed_(seed) {
    PYREG_CHECK(spec.input_dim > 0, "input_dim must be positive; got " << spec.input_dim);
    PYREG_CHECK(!spec.layers.empty(), "a model needs at least one Dense layer");
    PYREG_CHECK(spec.input_dropout >= 0.0 && spec.input_dropout < 1.0,
                "dropout rate must be in [0, 1); got " << spec.input_dropout);
    size_t off = 0;
    for (size_t l = 0; l < spec.layers.size(); ++l) {
        const LayerSpec& L = spec.layers[l];
        PYREG_CHECK(L.units > 0, "units of layer " << l << " must be positive; got " << L.units);
        PYREG_CHECK(L.dropout >= 0.0 && L.dropout < 1.0, "dropout rate must be in [0, 1); got " << L.dropout);
        PYREG_CHECK(L.act != Act::softmax || l + 1 == spec.layers.size(),
                    "softmax is supported only as the last layer's activation (layer " << l << ")");
        PYREG_CHECK(L.kernel_l1 >= 0 && L.kernel_l2 >= 0 && L.bias_l1 >= 0 && L.bias_l2 >= 0,
                    "regularization factors must be non-negative (layer " << l << ")");
        const size_t in = in_dim(l), out = L.units;
        kernel_off_.push_back(off);
        info_.push_back({off, {in, out}, "kernel", l});
        for (size_t c = 0; c < out; c += kColBlock)  // one segment per column panel
            segments_.push_back({off + c * in, in, std::min(kColBlock, out - c), L.kernel_l1, L.kernel_l2, true, c, out, l, false});
        off = align_up(off + in * out);
        bias_off_.push_back(off);
        if (L.use_bias) {
            info_.push_back({off, {out}, "bias", l});
            for (size_t c = 0; c < out; c += kColBlock)
                segments_.push_back({off + c, 1, std::min(kColBlock, out - c), L.bias_l1, L.bias_l2, true, c, out, l, true});
            off = align_up(off + out);
        }
    }
    arena_size_ = off;
    params_.assign(arena_size_, 0.0f);
    grads_.assign(arena_size_, 0.0f);
    penalty_segments_.assign(segments_.size(), 0.0);
    set_optimizer(OptimizerConfig{});
}

// ---------------------------------------------------------------------------------------------
// profiling: the master thread adds the time since its previous mark to a phase slot.

struct Mlp::PhaseClock {
    std::vector<std::string> names;
    std::vector<double> seconds;
    std::chrono::steady_clock::time_point last;
    void start() { last = std::chrono::steady_clock::now(); }
    void mark(size_t slot) {
        const auto now = std::chrono::steady_clock::now();
        seconds[slot] += std::chrono::duration<double>(now - last).count();
        last = now;
    }
};

void Mlp::set_profiling(bool on) {
    if (!on) {
        clock_.reset();
        return;
    }
    clock_.reset(new PhaseClock());
    const size_t L = spec_.layers.size();
    clock_->names.push_back("setup");
    for (size_t l = 0; l < L; ++l) clock_->names.push_back("forward_" + std::to_string(l));
    clock_->names.push_back("loss");
    for (size_t l = 0; l < L; ++l) clock_->names.push_back("backward_" + std::to_string(l));
    clock_->names.push_back("optimizer");
    clock_->names.push_back("report");
    clock_->seconds.assign(clock_->names.size(), 0.0);
}

std::vector<std::pair<std::string, double>> Mlp::profile() const {
    std::vector<std::pair<std::string, double>> out;
    if (clock_)
        for (size_t i = 0; i < clock_->names.size(); ++i) out.emplace_back(clock_->names[i], clock_->seconds[i]);
    return out;
}

void Mlp::mark(size_t slot) {
    if (clock_ && team_rank() == 0) clock_->mark(slot);
}

Mlp::~Mlp() = default;

size_t Mlp::num_params() const {
    size_t n = 0;
    for (const Segment& s : segments_) n += s.size();
    return n;
}

void Mlp::set_optimizer(const OptimizerConfig& cfg) {
    PYREG_CHECK(cfg.learning_rate >= 0.0, "learning_rate must be non-negative; got " << cfg.learning_rate);
    PYREG_CHECK(cfg.weight_decay >= 0.0, "weight_decay must be non-negative; got " << cfg.weight_decay);
    PYREG_CHECK(cfg.momentum >= 0.0 && cfg.momentum <= 1.0, "momentum must be in [0, 1]; got " << cfg.momentum);
    opt_ = cfg;
    iterations_ = 0;
    const bool adam = cfg.kind == OptKind::adam;
    m_.assign(adam || cfg.momentum != 0.0 ? arena_size_ : 0, 0.0f);
    v_.assign(adam ? arena_size_ : 0, 0.0f);
    vhat_.assign(adam && cfg.amsgrad ? arena_size_ : 0, 0.0f);
}

double Mlp::penalty() const { return pyreg::penalty(segments_, params_.data()); }

bool Mlp::choose_sparse(const float* x, size_t N, size_t IN, SparseMode mode) {
    if (mode != SparseMode::automatic) return mode == SparseMode::sparse;
    const size_t rows = std::min<size_t>(N, 1024);
    size_t nz = 0;
    for (size_t i = 0; i < rows * IN; ++i) nz += x[i] != 0.0f;
    return rows > 0 && (double)nz < kSparseDensity * (double)(rows * IN);
}

void Mlp::ensure_workspace(std::unique_ptr<Workspace>& ws, size_t rows, bool training, int threads) {
    if (ws && ws->capacity >= rows && ws->training == training && ws->threads >= (size_t)threads) return;
    ws.reset(new Workspace());
    Workspace& w = *ws;
    w.capacity = rows;
    w.training = training;
    w.threads = (size_t)threads;
    const size_t L = spec_.layers.size(), IN = spec_.input_dim;
    w.act.resize(L);
    w.pre.resize(L);
    w.grad.resize(L);
    w.mask.resize(L);
    w.wt.resize(L);
    w.act_rows.resize(L);
    w.grad_rows.resize(L);
    for (size_t l = 0; l < L; ++l) {
        const LayerSpec& S = spec_.layers[l];
        const size_t out = S.units;
        w.act[l].assign(rows * out, 0.0f);
        w.act_rows[l].resize(rows);
        for (size_t r = 0; r < rows; ++r) w.act_rows[l][r] = w.act[l].data() + r * out;
        if (!training) continue;
        w.grad[l].assign(rows * out, 0.0f);
        w.grad_rows[l].resize(rows);
        for (size_t r = 0; r < rows; ++r) w.grad_rows[l][r] = w.grad[l].data() + r * out;
        if (S.dropout > 0.0) w.mask[l].assign(rows * out, 0);
        if (needs_pre_dropout_copy(S)) w.pre[l].assign(rows * out, 0.0f);
        if (l > 0) w.wt[l].assign(out * in_dim(l), 0.0f);
    }
    w.x_rows.assign(rows, nullptr);
    if (training && spec_.input_dropout > 0.0) {
        w.xin.assign(rows * IN, 0.0f);
        w.xin_mask.assign(rows * IN, 0);
        w.xin_rows.resize(rows);
        for (size_t r = 0; r < rows; ++r) w.xin_rows[r] = w.xin.data() + r * IN;
    }
    w.row_bits.assign(rows * bit_words(IN), 0);
    if (training) {
        w.x_rows_next.assign(rows, nullptr);
        w.x_rows_ahead.assign(rows, nullptr);
        w.labels_next.assign(rows, 0);
        w.row_bits_next.assign(rows * bit_words(IN), 0);
        w.col_bits.assign(IN * bit_words(rows), 0);
        w.gbuf.assign((size_t)threads * (kOptRows + rows) * kColBlock, 0.0f);
    }
    w.group_rows.assign((IN + kFeatureGroup - 1) / kFeatureGroup * bit_words(rows), 0);
    w.scratch.assign((size_t)threads * std::max(IN, rows), 0);
    w.loss_rows.assign(rows, 0.0f);
    w.correct_rows.assign(rows, 0);
    w.labels.assign(rows, 0);
}

// ---------------------------------------------------------------------------------------------
// forward and backward of one batch of `rows` rows; called by every thread of the team.

// each phase below works on the columns its thread owns; a barrier separates a phase from the
// next one that reads other threads' columns.

void Mlp::forward(Workspace& ws, size_t rows, bool training, bool sparse, Fusion fusion) {
    const size_t L = spec_.layers.size(), IN = spec_.input_dim;
    const float* const* in_rows = ws.x_rows.data();
    if (training && spec_.input_dropout > 0.0) {
        const Range c = owned_cols(IN);
        for (size_t b = 0; b < rows; ++b)
            std::memcpy(ws.xin.data() + b * IN + c.begin, ws.x_rows[b] + c.begin, (c.end - c.begin) * sizeof(float));
        dropout_forward(ws.xin.data(), ws.xin_mask.data(), rows, IN, spec_.input_dropout, seed_, 0, dropout_step_);
        in_rows = ws.xin_rows.data();
        team_barrier();
    }
    if (sparse && !fusion.layer0_ready) {
        if (sparse_scan_rows(ws.sparse(), in_rows, rows, IN)) ws.bad_input.store(true, std::memory_order_relaxed);
        team_barrier();
    }
    // the maps the weight gradient reads, after barriers to come
    if (sparse && training && fusion.sweep) sparse_column_bits(ws.row_bits.data(), rows, IN, ws.col_bits.data());
    else if (sparse && training) sparse_scan_groups(ws.sparse(), rows, IN);
    for (size_t l = 0; l < L; ++l) {
        const LayerSpec& S = spec_.layers[l];
        const Act act = S.act == Act::softmax ? Act::linear : S.act;  // softmax: in the loss or in predict
        float* y = ws.act[l].data();
        if (l == 0 && fusion.layer0_ready)
            ;  // computed by the previous step's sweep
        else if (l == 0 && sparse)
            dense_forward_sparse(y, ws.sparse(), in_rows, kernel(l), bias(l), rows, act);
        else
            dense_forward(y, in_rows, kernel(l), bias(l), rows, act);
        if (training && S.dropout > 0.0) {
            if (needs_pre_dropout_copy(S)) {
                const Range c = owned_cols(S.units);
                for (size_t b = 0; b < rows; ++b)
                    std::memcpy(ws.pre[l].data() + b * S.units + c.begin, y + b * S.units + c.begin,
                                (c.end - c.begin) * sizeof(float));
            }
            dropout_forward(y, ws.mask[l].data(), rows, S.units, S.dropout, seed_, (uint32_t)(l + 1), dropout_step_);
        }
        team_barrier();  // the next layer reads every column
        // the next batch's bitmaps for the sweep, part 1 of 3 (see scan_next_rows)
        if (l == 0 && L > 1 && fusion.next_rows > 0) scan_next_rows(ws, fusion.next_rows, 0);
        in_rows = ws.act_rows[l].data();
        if (training) mark(1 + l);
    }
}

// ends without a barrier: the owner of each gradient column goes straight on to its optimizer update.
void Mlp::backward(Workspace& ws, size_t rows, bool sparse, Fusion fusion) {
    const size_t next_rows = fusion.next_rows;
    const size_t L = spec_.layers.size();
    float* g = grads_.data();
    for (size_t l = L; l-- > 0;) {
        if (l == 0 && fusion.sweep) {  // the sweep (train_epoch) takes layer 0 from here
            if (L == 1 && next_rows > 0) {
                for (int part = 0; part < kScanParts; ++part) scan_next_rows(ws, next_rows, part);
                team_barrier();
            }
            mark(L + 2);
            break;
        }
        const LayerSpec& S = spec_.layers[l];
        const float* dz = ws.grad[l].data();
        const WeightGrads dw = kernel_grad(l);
        float* db = S.use_bias ? g + bias_off_[l] : nullptr;
        const float* const* in_rows =
            l > 0 ? ws.act_rows[l - 1].data()
                  : (spec_.input_dropout > 0.0 ? ws.xin_rows.data() : ws.x_rows.data());
        // the first write of each gradient overwrites it: no per-step memset of the arena.
        if (l == 0 && sparse)
            dense_backward_params_sparse(dw, db, dz, ws.sparse(), in_rows, rows, false);
        else
            dense_backward_params(dw, db, dz, in_rows, rows, false);
        if (l == 0) {  // the input needs no gradient
            mark(L + 2);
            break;
        }
        const LayerSpec& P = spec_.layers[l - 1];
        const float* y_in = needs_pre_dropout_copy(P) ? ws.pre[l - 1].data() : ws.act[l - 1].data();
        const uint8_t* mask_in = P.dropout > 0.0 ? ws.mask[l - 1].data() : nullptr;
        dense_backward_input(ws.grad[l - 1].data(), ws.grad_rows[l].data(), kernel(l), ws.wt[l].data(), rows, false,
                             y_in, mask_in, P.dropout > 0.0 ? keep_scale(P.dropout) : 1.0f, P.act);
        if (l == 1 && next_rows > 0) scan_next_rows(ws, next_rows, 2);
        team_barrier();  // the layer below reads every column of its dz
        mark(L + 2 + l);
    }
}

// ---------------------------------------------------------------------------------------------
// one epoch

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

void Mlp::narrow_top_step(Workspace& ws, size_t rows, size_t next_rows, size_t ahead_rows, int threads) {
    // one barrier (the caller's) instead of four: the master runs the whole output layer (forward, loss
    // and gradient over every row, its weight gradient, and layer 0's dz over every column, relu and
    // dropout mask fused), the others meanwhile take this batch's column bitmaps, scan the next batch
    // and prefetch the one after; with one thread, it does both. each barrier costs its latency and the
    // wait for the slowest thread; fewer, with SpinBarrier: epoch 105 -> 101 ms on two threads, and an
    // oversubscribed team (4 threads on 2 cores) 360 -> 200 ms (measured, fit with validation). measured
    // slower: handing the dlogits to the others for their own columns of dz (with a flag, no barrier),
    // and splitting the output layer's rows between the threads (the cross-core reads cost more).
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
        mark(2);
        softmax_xent_rows({0, rows}, ws.grad[1].data(), ws.loss_rows.data(), ws.correct_rows.data(), ws.act[1].data(),
                          ws.labels.data(), classes(), 1.0f / (float)rows);
        mark(3);
        float* db = S1.use_bias ? grads_.data() + bias_off_[1] : nullptr;
        dense_backward_params(kernel_grad(1), db, ws.grad[1].data(), ws.act_rows[0].data(), rows, false);
        const bool drop = S0.dropout > 0.0;
        dense_backward_input_cols({0, S0.units}, ws.grad[0].data(), ws.grad_rows[1].data(), kernel(1), ws.wt[1].data(),
                                  rows, false, ws.act[0].data(), drop ? ws.mask[0].data() : nullptr,
                                  drop ? keep_scale(S0.dropout) : 1.0f, S0.act);
        mark(5);
    }
    if (master && threads > 1) return;
    const size_t IN = spec_.input_dim, words = bit_words(IN);
    const Range w = helper_units(words);
    kernels().column_bits(ws.row_bits.data(), rows, words, w.begin, w.end, IN, ws.col_bits.data());
    for (int part = 0; part < kScanParts; ++part) scan_next_rows(ws, next_rows, part);
    if (threads == 1) return;  // one thread: the sweep spreads the prefetch over its chunks
    const Range r = helper_units(ahead_rows);
    for (size_t b = r.begin; b < r.end; ++b)
        for (size_t f = 0; f < IN; f += kLineFloats) __builtin_prefetch(ws.x_rows_ahead[b] + f, 0, 2);
}

bool Mlp::can_sweep(bool sparse) const {
    const Act a0 = spec_.layers[0].act;
    const bool linear_or_relu = a0 == Act::relu || a0 == Act::linear || (a0 == Act::softmax && spec_.layers.size() == 1);
    return sparse && spec_.input_dropout == 0.0 && linear_or_relu;
}

EpochResult Mlp::train_epoch(const float* x, const int32_t* y, size_t N, size_t batch_size, bool shuffle,
                              uint64_t epoch, int threads, SparseMode sparse_mode, const ProgressFn& progress,
                             bool stop_on_nonfinite, bool lookahead, bool check_input) {
    PYREG_CHECK(batch_size > 0, "batch_size must be positive; got " << batch_size);
    PYREG_CHECK(N > 0, "cannot train on 0 samples");
    const size_t B = std::min(batch_size, N), IN = spec_.input_dim, K = classes();
    const size_t steps = (N + B - 1) / B;
    const int T = threads > 0 ? threads : default_threads();
    ensure_workspace(train_ws_, B, true, T);
    Workspace& ws = *train_ws_;
    epoch_order(perm_, N, shuffle, seed_, epoch);
    const bool sparse = choose_sparse(x, N, IN, sparse_mode);
    EpochResult res;
    res.used_sparse = sparse;
    // fit's NaN/Inf check of x, when left to the trainer: the sparse path scans every row of x as it is
    // before training on it, so its scans check for free (a separate pass costs 6 ms per fit on MNIST,
    // ~5% of an epoch), and a failed epoch puts the saved state back. other paths check up front.
    const bool check_in_scans = check_input && sparse && spec_.input_dropout == 0.0;
    if (check_input && !check_in_scans && first_nonfinite(x, N * IN, nullptr, T) >= 0) {
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
    if (clock_) clock_->start();
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
    lookahead = lookahead && sweep;
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
    double step_loss = 0.0;  // narrow steps: the batch loss, from the master to every thread
    SpinBarrier step_barrier;  // the steps' own barriers (forward and backward use omp's)
    run_team(T, [&] {
        const FlushDenormals ftz;  // as tensorflow's cpu kernels (fpenv.h)
        const bool master = team_rank() == 0;
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
            mark(0);
            double batch_loss;
            if (narrow_step) {
                narrow_top_step(ws, rows, next_rows, ahead_rows, T);
                if (master) {
                    double ce = 0.0;
                    for (size_t r = 0; r < rows; ++r) ce += ws.loss_rows[r];
                    step_loss = ce / (double)rows + pen;
                }
                step_barrier.wait();
                batch_loss = step_loss;
                if (!master) {  // this thread's columns of layer 0's dz, written by the master: fetched at once
                    const Range c = owned_cols(spec_.layers[0].units);
                    for (size_t r = 0; r < rows; ++r)
                        for (size_t j = c.begin; j < c.end; j += kCacheLine / sizeof(float))
                            __builtin_prefetch(ws.grad[0].data() + r * spec_.layers[0].units + j, 0, 3);
                }
            } else {
                forward(ws, rows, true, sparse, Fusion{sweep, layer0_ready, next_rows});
                softmax_xent(ws.grad[L - 1].data(), ws.loss_rows.data(), ws.correct_rows.data(),
                             ws.act.back().data(), ws.labels.data(), rows, K, 1.0f / (float)rows);
                if (L > 1 && next_rows > 0) scan_next_rows(ws, next_rows, 1);
                step_barrier.wait();
                // every thread sums the batch loss in the same order, so all agree on stopping without a barrier.
                double ce = 0.0;
                for (size_t r = 0; r < rows; ++r) ce += ws.loss_rows[r];
                batch_loss = ce / (double)rows + pen;  // keras: mean loss + regularisation
            }
            // this batch's rows were scanned before the barrier above, the next batch's are being scanned
            // (read by the master at the step's end): every thread reads the same value here.
            if (check_in_scans && ws.bad_input.load(std::memory_order_relaxed)) {
                if (master) res.bad_input = true;
                break;  // before any update
            }
            const bool bad = stop_on_nonfinite && !std::isfinite(batch_loss);
            if (master) {
                size_t correct = 0;
                for (size_t r = 0; r < rows; ++r) correct += ws.correct_rows[r];
                loss_sum += batch_loss * (double)rows;
                correct_sum += (double)correct;
                res.seen += rows;
                res.steps = s + 1;
                if (bad) {
                    res.nonfinite = true;
                    res.nonfinite_step = s;
                }
            }
            mark(1 + L);
            if (bad) break;  // before any update: the weights stay as they were
            const OptCoef coef = step_coefficients(opt_, iterations_);
            if (!narrow_step) backward(ws, rows, sparse, Fusion{sweep, layer0_ready, next_rows});
            if (sweep) {
                const SweepLayer layer{IN, spec_.layers[0].units, act0, ws.act[0].data(), ws.grad[0].data()};
                const SweepBatch cur{rows, ws.x_rows.data(), ws.col_bits.data()};
                const SweepBatch nxt{next_rows, ws.x_rows_next.data(), ws.row_bits_next.data()};
                // narrow steps on several threads prefetch the batch after next beside the output layer
                const bool prefetched = narrow_step && T > 1;
                const SweepBatch ahead{prefetched ? 0 : ahead_rows, ws.x_rows_ahead.data(), nullptr};
                float* sweep_buf = ws.gbuf.data() + (size_t)team_rank() * (kOptRows + B) * kColBlock;
                first_layer_sweep(opt_, coef, segments_, params_.data(), opt_state(), penalty_segments_.data(), layer,
                                  cur, nxt, ahead, sweep_buf, sweep_buf + kOptRows * kColBlock);
                // narrow steps skip the forward: the next batch's layer-0 dropout comes here, on the
                // columns this thread just computed (step counter: the next step's)
                if (narrow && next_rows > 0 && drop0 > 0.0)
                    dropout_forward(ws.act[0].data(), ws.mask[0].data(), next_rows, spec_.layers[0].units, drop0, seed_,
                                    1, dropout_step_ + 1);
                mark(L + 2);
            }
            optimizer_step(opt_, coef, segments_, params_.data(), grads_.data(), opt_state(), penalty_segments_.data(),
                           sweep ? 0 : -1);
            step_barrier.wait();
            mark(2 + 2 * L);
            if (master) {
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
            step_barrier.wait();
            mark(3 + 2 * L);
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

// ---------------------------------------------------------------------------------------------
// inference

void Mlp::eval_pass(const float* x, const int32_t* y, float* out, size_t N, size_t batch_size, int threads,
                    bool sparse, double* loss_sum, size_t* correct) {
    // rows in chunks, each chunk on one thread from its scan to its loss: every row's input is read
    // by one core only, the narrow output layer runs on every core, and nothing waits at a barrier
    // (measured on the 10,000 MNIST test rows, 2 threads: 7.5 -> 4.5 ms). a row's result does not depend
    // on its chunk or thread, and the losses are summed in row order: equal for any thread count.
    const size_t IN = spec_.input_dim, K = classes(), L = spec_.layers.size();
    const int T = threads > 0 ? threads : default_threads();
    size_t C = std::min(std::max<size_t>(batch_size, 256), N);  // rows per chunk
    C = std::max<size_t>(std::min(C, (N + (size_t)T - 1) / (size_t)T), 1);  // every thread gets rows
    const size_t chunks = (N + C - 1) / C;
    const int team = (int)std::min<size_t>((size_t)T, chunks);
    eval_ws_.resize(std::max<size_t>(eval_ws_.size(), (size_t)team));
    for (int t = 0; t < team; ++t) ensure_workspace(eval_ws_[t], C, false, 1);
    std::vector<float> loss_of(y ? N : 0);  // (N) per-row losses, summed in row order below
    std::vector<size_t> correct_of(team, 0);
    run_team(team, [&] {
        const FlushDenormals ftz;
        const int t = team_rank();
        Workspace& ws = *eval_ws_[t];
        run_alone([&] {
            for (size_t c = (size_t)t; c < chunks; c += (size_t)team) {
                const size_t c0 = c * C, rows = std::min(C, N - c0);
                for (size_t r = 0; r < rows; ++r) ws.x_rows[r] = x + (c0 + r) * IN;
                forward(ws, rows, false, sparse, Fusion{});
                const float* logits = ws.act[L - 1].data();
                if (y) {
                    softmax_xent(nullptr, loss_of.data() + c0, ws.correct_rows.data(), logits, y + c0, rows, K, 1.0f);
                    for (size_t r = 0; r < rows; ++r) correct_of[t] += ws.correct_rows[r];
                }
                if (out) {
                    if (spec_.layers.back().act == Act::softmax) softmax_forward(out + c0 * K, logits, rows, K);
                    else std::memcpy(out + c0 * K, logits, rows * K * sizeof(float));
                }
            }
        });
    });
    double ls = 0.0;
    if (y)
        for (size_t r = 0; r < N; ++r) ls += loss_of[r];
    size_t cs = 0;
    for (size_t v : correct_of) cs += v;
    if (loss_sum) *loss_sum = ls;
    if (correct) *correct = cs;
}

EvalResult Mlp::evaluate(const float* x, const int32_t* y, size_t N, size_t batch_size, int threads,
                         SparseMode sparse_mode) {
    PYREG_CHECK(N > 0, "cannot evaluate on 0 samples");
    EvalResult r;
    r.used_sparse = choose_sparse(x, N, spec_.input_dim, sparse_mode);
    double ls = 0.0;
    size_t cs = 0;
    eval_pass(x, y, nullptr, N, batch_size, threads, r.used_sparse, &ls, &cs);
    r.loss = ls / (double)N + penalty();
    r.accuracy = (double)cs / (double)N;
    return r;
}

void Mlp::predict(float* out, const float* x, size_t N, size_t batch_size, int threads, SparseMode sparse_mode) {
    if (N == 0) return;
    eval_pass(x, nullptr, out, N, batch_size, threads, choose_sparse(x, N, spec_.input_dim, sparse_mode), nullptr,
              nullptr);
}

}  // namespace pyreg

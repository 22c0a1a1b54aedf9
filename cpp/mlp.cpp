// mlp.cpp: the native trainer: arena set-up, batch workspaces, forward and backward, inference
// (the epoch loop: train_epoch.cpp).
#include "mlp.h"
#include "mlp_internal.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "dropout.h"
#include "fpenv.h"
#include "loss.h"
#include "noise.h"
#include "parallel.h"
#include "sweep.h"

namespace pyreg {

namespace {

constexpr size_t kAlign = 16;  // floats: every arena part starts on a 64-byte boundary
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// sigmoid and tanh derivatives and the activity penalty read the output before dropout.
bool needs_pre_dropout_copy(const LayerSpec& l) {
    return l.dropout > 0.0 && (l.act == Act::sigmoid || l.act == Act::tanh || l.has_activity());
}

// a noise layer moves its input anywhere: every activation but linear needs its input for act'.
bool needs_pre_noise_copy(const LayerSpec& l) { return l.noise.active() && l.act != Act::linear; }

}  // namespace

Mlp::Mlp(const MlpSpec& spec, uint64_t seed) : spec_(spec), seed_(seed) {
    PYREG_CHECK(spec.input_dim > 0, "input_dim must be positive; got " << spec.input_dim);
    PYREG_CHECK(!spec.layers.empty(), "a model needs at least one Dense layer");
    PYREG_CHECK(spec.input_dropout >= 0.0 && spec.input_dropout < 1.0,
                "dropout rate must be in [0, 1); got " << spec.input_dropout);
    check_noise(spec.input_noise);
    PYREG_CHECK(!(spec.input_noise.active() && spec.input_dropout > 0.0),
                "a noise layer and a dropout on the same input are not supported");
    size_t off = 0;
    for (size_t l = 0; l < spec.layers.size(); ++l) {
        const LayerSpec& L = spec.layers[l];
        PYREG_CHECK(L.units > 0, "units of layer " << l << " must be positive; got " << L.units);
        PYREG_CHECK(L.dropout >= 0.0 && L.dropout < 1.0, "dropout rate must be in [0, 1); got " << L.dropout);
        check_noise(L.noise);
        PYREG_CHECK(!(L.noise.active() && L.dropout > 0.0),
                    "a noise layer and a dropout on the same layer's output are not supported (layer " << l << ")");
        PYREG_CHECK(L.act != Act::softmax || l + 1 == spec.layers.size(),
                    "softmax is supported only as the last layer's activation (layer " << l << ")");
        PYREG_CHECK(!(L.has_activity() && L.act == Act::softmax),
                    "an activity penalty on a softmax output is not supported (layer " << l << ")");
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
// profiling: every team thread adds the time since its own previous mark to a phase slot.

void Mlp::set_profiling(bool on) {
    PYREG_CHECK(!busy(), "cannot change profiling while the model is training");
    if (!on) {
        clock_.reset();
        return;
    }
    clock_.reset(new PhaseClock(spec_.layers.size()));
}

std::vector<std::vector<std::pair<std::string, double>>> Mlp::profile() const {
    PYREG_CHECK(!busy(), "cannot read the profile while the model is training");
    std::vector<std::vector<std::pair<std::string, double>>> out;
    if (!clock_) return out;
    for (const PhaseClock::Thread& t : clock_->threads) {
        out.emplace_back();
        for (size_t i = 0; i < clock_->names.size(); ++i) out.back().emplace_back(clock_->names[i], t.seconds[i]);
    }
    return out;
}

void Mlp::mark(Phase p, size_t layer) {
    if (!clock_) return;  // profiling off: one test per mark
    const int rank = team_rank();
    if ((size_t)rank < clock_->threads.size()) clock_->mark(rank, clock_->slot(p, layer));
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

bool Mlp::has_noise() const {
    if (spec_.input_noise.active()) return true;
    for (const LayerSpec& L : spec_.layers)
        if (L.noise.active()) return true;
    return false;
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
    w.noise.resize(L);
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
        if (needs_pre_dropout_copy(S) || needs_pre_noise_copy(S)) w.pre[l].assign(rows * out, 0.0f);
        if (S.noise.active()) w.noise[l].assign(rows * out, 0.0f);
        if (l > 0) w.wt[l].assign(out * in_dim(l), 0.0f);
    }
    w.x_rows.assign(rows, nullptr);
    if (training && input_transformed()) {
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
        w.gbuf.assign((size_t)threads * (kOptRows + 2 * rows) * kColBlock, 0.0f);
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
    if (training && input_transformed()) {
        const Range c = owned_cols(IN);
        for (size_t b = 0; b < rows; ++b)
            std::memcpy(ws.xin.data() + b * IN + c.begin, ws.x_rows[b] + c.begin, (c.end - c.begin) * sizeof(float));
        if (spec_.input_dropout > 0.0)
            dropout_forward(ws.xin.data(), ws.xin_mask.data(), rows, IN, spec_.input_dropout, seed_, 0, dropout_step_);
        else  // the input needs no gradient: no factor kept
            noise_forward(ws.xin.data(), nullptr, rows, IN, spec_.input_noise, seed_, 0, dropout_step_);
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
        if (training && S.noise.active()) {
            if (needs_pre_noise_copy(S)) {
                const Range c = owned_cols(S.units);
                for (size_t b = 0; b < rows; ++b)
                    std::memcpy(ws.pre[l].data() + b * S.units + c.begin, y + b * S.units + c.begin,
                                (c.end - c.begin) * sizeof(float));
            }
            noise_forward(y, ws.noise[l].data(), rows, S.units, S.noise, seed_, (uint32_t)(l + 1), dropout_step_);
        }
        team_barrier();  // the next layer reads every column
        // the next batch's bitmaps for the sweep, part 1 of 3 (see scan_next_rows)
        if (l == 0 && L > 1 && fusion.next_rows > 0) scan_next_rows(ws, fusion.next_rows, 0);
        in_rows = ws.act_rows[l].data();
        if (training) mark(Phase::forward, l);
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
            mark(Phase::backward, 0);
            break;
        }
        const LayerSpec& S = spec_.layers[l];
        const float* dz = ws.grad[l].data();
        const WeightGrads dw = kernel_grad(l);
        float* db = S.use_bias ? g + bias_off_[l] : nullptr;
        const float* const* in_rows =
            l > 0 ? ws.act_rows[l - 1].data()
                  : (input_transformed() ? ws.xin_rows.data() : ws.x_rows.data());
        // the first write of each gradient overwrites it: no per-step memset of the arena.
        if (l == 0 && sparse)
            dense_backward_params_sparse(dw, db, dz, ws.sparse(), in_rows, rows, false);
        else
            dense_backward_params(dw, db, dz, in_rows, rows, false);
        if (l == 0) {  // the input needs no gradient
            mark(Phase::backward, 0);
            break;
        }
        const LayerSpec& P = spec_.layers[l - 1];
        if (P.noise.active()) {
            // keras' order: the incoming gradient times the noise's factor, then act' of the noise's input
            dense_backward_input(ws.grad[l - 1].data(), ws.grad_rows[l].data(), kernel(l), ws.wt[l].data(), rows, false,
                                 nullptr, nullptr, 1.0f, Act::linear);
            float* dx = ws.grad[l - 1].data();
            noise_backward(dx, ws.noise[l - 1].data(), rows, P.units, P.noise.kind);
            if (P.act != Act::linear) {
                const Range c = owned_cols(P.units);
                if (c.end > c.begin && rows > 0)
                    kernels().act_backward(rows, c.begin, c.end, P.units, dx, dx, ws.pre[l - 1].data(), nullptr, 1.0f,
                                           P.act);
            }
            if (l == 1 && next_rows > 0) scan_next_rows(ws, next_rows, 2);
            team_barrier();
            mark(Phase::backward, l);
            continue;
        }
        const float* y_in = needs_pre_dropout_copy(P) ? ws.pre[l - 1].data() : ws.act[l - 1].data();
        const uint8_t* mask_in = P.dropout > 0.0 ? ws.mask[l - 1].data() : nullptr;
        dense_backward_input(ws.grad[l - 1].data(), ws.grad_rows[l].data(), kernel(l), ws.wt[l].data(), rows, false,
                             y_in, mask_in, P.dropout > 0.0 ? keep_scale(P.dropout) : 1.0f, P.act);
        if (P.has_activity())  // the same columns dense_backward_input wrote
            add_activity_grad(ws.grad[l - 1].data(), y_in, rows, P.units, owned_cols(P.units), P.act, P.activity_l1,
                              P.activity_l2, rows);
        if (l == 1 && next_rows > 0) scan_next_rows(ws, next_rows, 2);
        team_barrier();  // the layer below reads every column of its dz
        mark(Phase::backward, l);
    }
}

// ---------------------------------------------------------------------------------------------
// constraints and activity penalties (constraints.h)

bool Mlp::needs_general_step() const {
    for (const LayerSpec& S : spec_.layers)
        if (S.kernel_constraint.active() || S.bias_constraint.active() || S.has_activity()) return true;
    return false;
}

void Mlp::constrain_owned() {
    for (size_t l = 0; l < spec_.layers.size(); ++l) {
        const LayerSpec& S = spec_.layers[l];
        const Range c = owned_cols(S.units);
        if (S.kernel_constraint.active() && S.kernel_constraint.per_column())
            constrain_kernel_cols(S.kernel_constraint, params_.data() + kernel_off_[l], in_dim(l), S.units, c);
        if (S.use_bias && S.bias_constraint.kind == ConstraintKind::non_neg)  // elementwise: the columns' owner
            constrain_kernel_cols(S.bias_constraint, params_.data() + bias_off_[l], 1, S.units, c);
    }
}

void Mlp::constrain_master() {
    for (size_t l = 0; l < spec_.layers.size(); ++l) {
        const LayerSpec& S = spec_.layers[l];
        if (S.kernel_constraint.active() && !S.kernel_constraint.per_column())
            constrain_kernel(S.kernel_constraint, params_.data() + kernel_off_[l], in_dim(l), S.units);
        if (S.use_bias && S.bias_constraint.active() && S.bias_constraint.kind != ConstraintKind::non_neg)
            constrain_vector(S.bias_constraint, params_.data() + bias_off_[l], S.units);
    }
    // the optimizer summed the penalties of the weights before their constraint: summed again
    for (size_t s = 0; s < segments_.size(); ++s) {
        const Segment& seg = segments_[s];
        const LayerSpec& S = spec_.layers[seg.layer];
        if (!(seg.is_bias ? S.bias_constraint : S.kernel_constraint).active()) continue;
        penalty_segments_[s] = pyreg::penalty({seg}, params_.data());
    }
}

void Mlp::add_activity_loss(Workspace& ws, Range r, float* loss) {
    for (size_t l = 0; l < spec_.layers.size(); ++l) {
        const LayerSpec& S = spec_.layers[l];
        if (!S.has_activity()) continue;
        const bool pre = ws.training && needs_pre_dropout_copy(S);
        const float* y = (pre ? ws.pre[l] : ws.act[l]).data();
        for (size_t b = r.begin; b < r.end; ++b)
            loss[b] = (float)((double)loss[b] +
                              activity_row_penalty(y + b * S.units, S.units, S.activity_l1, S.activity_l2));
    }
}

// ---------------------------------------------------------------------------------------------
// inference

void Mlp::eval_pass(const float* x, const int32_t* y, float* out, size_t N, size_t batch_size, int threads,
                    bool sparse, double* loss_sum, size_t* correct) {
    // rows in chunks, each chunk on one thread from its scan to its loss: every row's input is read
    // by one core only, the narrow output layer runs on every core, and nothing waits at a barrier. a
    // row's result does not depend on its chunk or thread, and the losses are summed in row order:
    // equal for any thread count.
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
        // the team openmp gave, which may be smaller than asked for (OMP_THREAD_LIMIT, OMP_DYNAMIC, a
        // nested region): striding by the requested size would leave chunks undone
        const size_t stride = (size_t)team_size();
        run_alone([&] {
            for (size_t c = (size_t)t; c < chunks; c += stride) {
                const size_t c0 = c * C, rows = std::min(C, N - c0);
                for (size_t r = 0; r < rows; ++r) ws.x_rows[r] = x + (c0 + r) * IN;
                forward(ws, rows, false, sparse, Fusion{});
                const float* logits = ws.act[L - 1].data();
                if (y) {
                    softmax_xent(nullptr, loss_of.data() + c0, ws.correct_rows.data(), logits, y + c0, rows, K, 1.0f,
                                 label_smoothing_);
                    add_activity_loss(ws, {0, rows}, loss_of.data() + c0);
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

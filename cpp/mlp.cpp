// mlp.cpp: the native trainer: arena set-up, batch workspaces, and the epoch loop on one team.
#include "mlp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <numeric>

#include "dropout.h"
#include "loss.h"
#include "parallel.h"
#include "rng.h"

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
    std::vector<std::vector<float>> act;    // per layer (rows, OUT_l): output, after dropout in training
    std::vector<std::vector<float>> pre;    // per layer (rows, OUT_l): output before dropout (sigmoid/tanh only)
    std::vector<std::vector<float>> grad;   // per layer (rows, OUT_l): d loss / d pre-activation
    std::vector<std::vector<uint8_t>> mask; // per layer (rows, OUT_l): dropout keep-mask
    std::vector<std::vector<float>> wt;     // per layer (OUT_l, IN_l): kernel transpose, l >= 1
    std::vector<std::vector<const float*>> act_rows, grad_rows;  // per layer (rows) row pointers
    std::vector<const float*> x_rows;      // (rows) the input batch, pointing into the data set
    std::vector<float> xin;                // (rows, IN) input copy when the input has dropout
    std::vector<uint8_t> xin_mask;         // (rows, IN)
    std::vector<const float*> xin_rows;    // (rows)
    std::vector<uint32_t> nz_idx, nz_cnt;  // sparse record: (rows, IN) and (rows)
    std::vector<float> nz_val;             // (rows, IN)
    std::vector<float> loss_rows;          // (rows)
    std::vector<uint8_t> correct_rows;     // (rows)
    std::vector<int32_t> labels;           // (rows)
    SparseInput sparse() { return {nz_idx.data(), nz_val.data(), nz_cnt.data()}; }
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
        const size_t in = in_dim(l);
        kernel_off_.push_back(off);
        info_.push_back({off, {in, L.units}, "kernel", l});
        segments_.push_back({off, in * L.units, L.kernel_l1, L.kernel_l2, true});
        off = align_up(off + in * L.units);
        bias_off_.push_back(off);
        if (L.use_bias) {
            info_.push_back({off, {L.units}, "bias", l});
            segments_.push_back({off, L.units, L.bias_l1, L.bias_l2, true});
            off = align_up(off + L.units);
        }
    }
    arena_size_ = off;
    params_.assign(arena_size_, 0.0f);
    grads_.assign(arena_size_, 0.0f);
    chunks_ = make_chunks(segments_);
    penalty_chunks_.assign(chunks_.size(), 0.0);
    set_optimizer(OptimizerConfig{});
}

Mlp::~Mlp() = default;

size_t Mlp::num_params() const {
    size_t n = 0;
    for (const Segment& s : segments_) n += s.size;
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

double Mlp::penalty() const { return pyreg::penalty(segments_, chunks_, params_.data()); }

bool Mlp::choose_sparse(const float* x, size_t N, size_t IN, SparseMode mode) {
    if (mode != SparseMode::automatic) return mode == SparseMode::sparse;
    const size_t rows = std::min<size_t>(N, 1024);
    size_t nz = 0;
    for (size_t i = 0; i < rows * IN; ++i) nz += x[i] != 0.0f;
    return rows > 0 && (double)nz < kSparseDensity * (double)(rows * IN);
}

void Mlp::ensure_workspace(std::unique_ptr<Workspace>& ws, size_t rows, bool training) {
    if (ws && ws->capacity >= rows && ws->training == training) return;
    ws.reset(new Workspace());
    Workspace& w = *ws;
    w.capacity = rows;
    w.training = training;
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
    w.nz_idx.assign(rows * IN, 0);
    w.nz_val.assign(rows * IN, 0.0f);
    w.nz_cnt.assign(rows, 0);
    w.loss_rows.assign(rows, 0.0f);
    w.correct_rows.assign(rows, 0);
    w.labels.assign(rows, 0);
}

// ---------------------------------------------------------------------------------------------
// forward and backward of one batch of `rows` rows; called by every thread of the team.

void Mlp::forward(Workspace& ws, size_t rows, bool training, bool sparse) {
    const size_t L = spec_.layers.size(), IN = spec_.input_dim;
    const float* const* in_rows = ws.x_rows.data();
    if (training && spec_.input_dropout > 0.0) {
        const Range r = my_units(rows);
        for (size_t b = r.begin; b < r.end; ++b) std::memcpy(ws.xin.data() + b * IN, ws.x_rows[b], IN * sizeof(float));
        team_barrier();
        dropout_forward(ws.xin.data(), ws.xin_mask.data(), rows, IN, spec_.input_dropout, seed_, 0, dropout_step_);
        in_rows = ws.xin_rows.data();
    }
    for (size_t l = 0; l < L; ++l) {
        const LayerSpec& S = spec_.layers[l];
        const Act act = S.act == Act::softmax ? Act::linear : S.act;  // softmax: in the loss or in predict
        float* y = ws.act[l].data();
        if (l == 0 && sparse)
            dense_forward_sparse(y, ws.sparse(), in_rows, kernel(l), bias(l), rows, in_dim(l), S.units, act);
        else
            dense_forward(y, in_rows, kernel(l), bias(l), rows, in_dim(l), S.units, act);
        if (training && S.dropout > 0.0) {
            if (needs_pre_dropout_copy(S)) {
                const Range r = my_units(rows);
                std::memcpy(ws.pre[l].data() + r.begin * S.units, y + r.begin * S.units,
                            (r.end - r.begin) * S.units * sizeof(float));
                team_barrier();
            }
            dropout_forward(y, ws.mask[l].data(), rows, S.units, S.dropout, seed_, (uint32_t)(l + 1), dropout_step_);
        }
        in_rows = ws.act_rows[l].data();
    }
}

void Mlp::backward(Workspace& ws, size_t rows, bool sparse) {
    const size_t L = spec_.layers.size();
    float* g = grads_.data();
    for (size_t l = L; l-- > 0;) {
        const LayerSpec& S = spec_.layers[l];
        const size_t in = in_dim(l), out = S.units;
        const float* dz = ws.grad[l].data();
        float* dw = g + kernel_off_[l];
        float* db = S.use_bias ? g + bias_off_[l] : nullptr;
        const float* const* in_rows =
            l > 0 ? ws.act_rows[l - 1].data()
                  : (spec_.input_dropout > 0.0 ? ws.xin_rows.data() : ws.x_rows.data());
        // the first write of each gradient overwrites it: no per-step memset of the arena.
        if (l == 0 && sparse)
            dense_backward_params_sparse(dw, db, dz, ws.sparse(), rows, in, out, false);
        else
            dense_backward_params(dw, db, dz, in_rows, rows, in, out, false);
        if (l == 0) break;  // the input needs no gradient
        const LayerSpec& P = spec_.layers[l - 1];
        const float* y_in = needs_pre_dropout_copy(P) ? ws.pre[l - 1].data() : ws.act[l - 1].data();
        const uint8_t* mask_in = P.dropout > 0.0 ? ws.mask[l - 1].data() : nullptr;
        dense_backward_input(ws.grad[l - 1].data(), ws.grad_rows[l].data(), kernel(l), ws.wt[l].data(), rows, in,
                             out, false, y_in, mask_in, P.dropout > 0.0 ? keep_scale(P.dropout) : 1.0f, P.act);
    }
}

// ---------------------------------------------------------------------------------------------
// one epoch

EpochResult Mlp::train_epoch(const float* x, const int32_t* y, size_t N, size_t batch_size, bool shuffle,
                              uint64_t epoch, int threads, SparseMode sparse_mode, const ProgressFn& progress,
                             bool stop_on_nonfinite) {
    PYREG_CHECK(batch_size > 0, "batch_size must be positive; got " << batch_size);
    PYREG_CHECK(N > 0, "cannot train on 0 samples");
    const size_t B = std::min(batch_size, N), IN = spec_.input_dim, K = classes();
    const size_t steps = (N + B - 1) / B;
    const int T = threads > 0 ? threads : default_threads();
    ensure_workspace(train_ws_, B, true);
    Workspace& ws = *train_ws_;
    epoch_order(perm_, N, shuffle, seed_, epoch);
    const bool sparse = choose_sparse(x, N, IN, sparse_mode);
    double pen = penalty();

    EpochResult res;
    res.used_sparse = sparse;
    double loss_sum = 0.0, correct_sum = 0.0;
    bool stop = false;
    std::exception_ptr error;

    run_team(T, [&] {
        const bool master = team_rank() == 0;
        for (size_t s = 0; s < steps; ++s) {
            const size_t b0 = s * B, rows = std::min(B, N - b0);
            if (master)
                for (size_t r = 0; r < rows; ++r) {
                    const size_t i = perm_[b0 + r];
                    ws.x_rows[r] = x + i * IN;
                    ws.labels[r] = y[i];
                }
            team_barrier();
            forward(ws, rows, true, sparse);
            softmax_xent(ws.grad[spec_.layers.size() - 1].data(), ws.loss_rows.data(), ws.correct_rows.data(),
                         ws.act.back().data(), ws.labels.data(), rows, K, 1.0f / (float)rows);
            if (master) {
                double ce = 0.0, correct = 0.0;
                for (size_t r = 0; r < rows; ++r) {
                    ce += ws.loss_rows[r];
                    correct += ws.correct_rows[r];
                }
                const double batch_loss = ce / (double)rows + pen;  // keras: mean loss + regularisation
                loss_sum += batch_loss * (double)rows;
                correct_sum += correct;
                res.seen += rows;
                res.steps = s + 1;
                if (stop_on_nonfinite && !std::isfinite(batch_loss)) {
                    res.nonfinite = true;
                    res.nonfinite_step = s;
                    stop = true;
                }
            }
            team_barrier();
            if (stop) break;
            backward(ws, rows, sparse);
            optimizer_step(opt_, iterations_, segments_, chunks_, params_.data(), grads_.data(),
                           {m_.empty() ? nullptr : m_.data(), v_.empty() ? nullptr : v_.data(),
                            vhat_.empty() ? nullptr : vhat_.data()},
                           penalty_chunks_.data());
            if (master) {
                pen = 0.0;
                for (double p : penalty_chunks_) pen += p;
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
            }
            team_barrier();
            if (stop) break;
        }
    });
    if (error) std::rethrow_exception(error);
    res.loss = res.seen ? loss_sum / (double)res.seen : 0.0;
    res.accuracy = res.seen ? correct_sum / (double)res.seen : 0.0;
    return res;
}

// ---------------------------------------------------------------------------------------------
// inference

void Mlp::eval_pass(const float* x, const int32_t* y, float* out, size_t N, size_t batch_size, int threads,
                    bool sparse, double* loss_sum, size_t* correct) {
    const size_t C = std::max<size_t>(std::min(std::max<size_t>(batch_size, 256), N), 1);  // rows per chunk
    const size_t IN = spec_.input_dim, K = classes(), L = spec_.layers.size();
    const int T = threads > 0 ? threads : default_threads();
    ensure_workspace(eval_ws_, C, false);
    Workspace& ws = *eval_ws_;
    double ls = 0.0;
    size_t cs = 0;
    run_team(T, [&] {
        const bool master = team_rank() == 0;
        for (size_t c0 = 0; c0 < N; c0 += C) {
            const size_t rows = std::min(C, N - c0);
            if (master)
                for (size_t r = 0; r < rows; ++r) ws.x_rows[r] = x + (c0 + r) * IN;
            team_barrier();
            forward(ws, rows, false, sparse);
            const float* logits = ws.act[L - 1].data();
            if (y) {
                softmax_xent(nullptr, ws.loss_rows.data(), ws.correct_rows.data(), logits, y + c0, rows, K, 1.0f);
                if (master)
                    for (size_t r = 0; r < rows; ++r) {
                        ls += ws.loss_rows[r];
                        cs += ws.correct_rows[r];
                    }
            }
            if (out) {
                if (spec_.layers.back().act == Act::softmax) {
                    softmax_forward(out + c0 * K, logits, rows, K);
                } else {
                    const Range r = my_units(rows);
                    std::memcpy(out + (c0 + r.begin) * K, logits + r.begin * K, (r.end - r.begin) * K * sizeof(float));
                }
            }
            team_barrier();
        }
    });
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

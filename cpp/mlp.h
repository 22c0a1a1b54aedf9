// mlp.h: the native trainer. One Mlp owns a stack of dense layers (each optionally followed by
// dropout), its parameter arena, the optimizer state and the batch workspaces, and runs whole
// epochs in C++ on one thread team: no python and no allocation per batch.
//
// arena layout (P floats), keras' get_weights order, each part 64-byte aligned:
//   [kernel_0 (IN_0, OUT_0) | bias_0 (OUT_0) | kernel_1 (IN_1, OUT_1) | bias_1 | ...]
// kernels are stored in column panels (dense.h: KernelView with panels = true): panel p holds
// columns [64p, 64p + 64) as its own row-major block, so each thread's columns are contiguous.
// grads, adam m, v (and vhat) use the same layout, so the optimizer is one pass over P.
// the last layer's softmax is fused into the loss (loss.h); the model's output is its probabilities.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "constraints.h"
#include "dense.h"
#include "noise.h"
#include "optim.h"
#include "simd.h"

namespace pyreg {

struct LayerSpec {
    size_t units = 0;
    Act act = Act::linear;
    bool use_bias = true;
    float kernel_l1 = 0.0f, kernel_l2 = 0.0f, bias_l1 = 0.0f, bias_l2 = 0.0f;
    double dropout = 0.0;  // rate of a dropout applied to this layer's output in training; 0 = none
    NoiseSpec noise;       // a noise layer on this layer's output in training (noise.h); not with dropout
    // applied after each optimizer update (constraints.h)
    ConstraintSpec kernel_constraint, bias_constraint;
    // activity penalty on the output (after the activation, before dropout), divided by the batch size
    float activity_l1 = 0.0f, activity_l2 = 0.0f;
    bool has_activity() const { return activity_l1 != 0.0f || activity_l2 != 0.0f; }
};

struct MlpSpec {
    size_t input_dim = 0;
    double input_dropout = 0.0;  // dropout applied to the input in training
    NoiseSpec input_noise;       // a noise layer on the input in training (noise.h); not with input_dropout
    std::vector<LayerSpec> layers;
};

// how the first layer treats its input.
enum class SparseMode : int { dense = 0, sparse = 1, automatic = 2 };

struct Progress {
    size_t step, steps, seen;  // batches done, batches in the epoch, samples done
    double loss, accuracy;     // running means over the samples done
};
// called by the trainer's master thread after every batch (keep it cheap: it runs on the hot path;
// the python binding throttles itself); returns false to stop after this batch.
using ProgressFn = std::function<bool(const Progress&)>;

// how train_epoch runs one epoch (Mlp.train_epoch's arguments, bind_trainer.cpp).
struct TrainOptions {
    size_t batch_size = 32;
    bool shuffle = true;   // the rows in an order drawn from (seed, epoch); else in order
    uint64_t epoch = 0;    // the epoch's index, for its shuffle
    int threads = 0;       // the team's size; 0 = default_threads()
    SparseMode sparse = SparseMode::automatic;  // the first layer's input path (choose_sparse)
    // a batch whose loss is NaN or Inf ends the epoch before its update (EpochResult::nonfinite)
    bool stop_on_nonfinite = true;
    // with sparse input, the next batch's layer-0 output is computed during this step's update (the
    // same results); needs a progress function that leaves the weights alone.
    bool lookahead = true;
    // x has not been checked for NaN/Inf: the epoch checks it and trains on nothing if it has one.
    bool check_input = false;
};

struct EpochResult {
    double loss = 0.0, accuracy = 0.0;  // sample-weighted means over the batches run
    size_t steps = 0, seen = 0;
    bool stopped = false;       // the progress callback asked to stop
    bool nonfinite = false;     // a batch loss was NaN or Inf; that batch's update was not applied
    size_t nonfinite_step = 0;  // its index in the epoch
    bool used_sparse = false;
    bool used_sweep = false;  // layer 0 went through the fused sweep (sweep.h)
    bool bad_input = false;   // check_input found a NaN or Inf in x: the model is as before the call
};

struct EvalResult {
    double loss = 0.0, accuracy = 0.0;  // mean cross-entropy + penalty, accuracy
    bool used_sparse = false;
};

struct ParamInfo {
    size_t offset;
    std::vector<size_t> shape;  // (IN, OUT) for a kernel, stored in column panels; (OUT) for a bias
    std::string name;           // "kernel" or "bias"
    size_t layer;
};

class Mlp {
  public:
    Mlp(const MlpSpec& spec, uint64_t seed);
    ~Mlp();

    const MlpSpec& spec() const { return spec_; }
    size_t num_params() const;  // trainable parameters, without alignment padding
    size_t arena_size() const { return arena_size_; }
    float* arena() { return params_.data(); }
    const std::vector<ParamInfo>& param_info() const { return info_; }
    uint64_t seed() const { return seed_; }
    void set_seed(uint64_t s) { seed_ = s; }
    // categorical cross-entropy's label smoothing (loss.h); 0 = none.
    double label_smoothing() const { return label_smoothing_; }
    void set_label_smoothing(double ls) { label_smoothing_ = ls; }

    // sets the optimizer; resets its state (moments, iterations) as keras' compile() does.
    void set_optimizer(const OptimizerConfig& cfg);
    const OptimizerConfig& optimizer() const { return opt_; }
    // a new learning rate (a constant lr, or an active schedule) from the next step on; keeps the
    // moments and the step counter (optimizer.learning_rate = ..., the lr callbacks between epochs).
    void set_learning_rate(double lr, const LrSchedule& schedule) {
        PYREG_CHECK(lr >= 0.0, "learning_rate must be non-negative; got " << lr);
        opt_.learning_rate = lr;
        opt_.schedule = schedule;
    }
    int64_t iterations() const { return iterations_; }
    void set_iterations(int64_t it) { iterations_ = it; }
    uint64_t dropout_step() const { return dropout_step_; }
    void set_dropout_step(uint64_t s) { dropout_step_ = s; }
    // moments as (P) arrays; empty when the optimizer has none.
    aligned_vector<float>& opt_m() { return m_; }
    aligned_vector<float>& opt_v() { return v_; }
    aligned_vector<float>& opt_vhat() { return vhat_; }

    // one epoch over x (N, IN) float32 with labels y (N) in [0, K), as `opt` says; progress (may be
    // empty) is called after every batch. shuffling uses (seed, opt.epoch).
    // with sparse input, layer 0's gradient, update and (opt.lookahead) the next batch's layer-0 output
    // are fused into one sweep (sweep.h); lookahead needs a progress function that leaves the weights
    // alone (it runs after the next batch's layer-0 output is computed). results are the same either way.
    // opt.check_input: x has not been checked for NaN/Inf; the sparse path's row scans check every row
    // before it is trained on and a failed epoch restores the model (weights, optimizer state, counters);
    // other paths check x up front. either way nothing is trained and res.bad_input is set.
    EpochResult train_epoch(const float* x, const int32_t* y, size_t N, const TrainOptions& opt,
                            const ProgressFn& progress);

    // loss (mean cross-entropy + regularisation penalty) and accuracy, inference mode.
    EvalResult evaluate(const float* x, const int32_t* y, size_t N, size_t batch_size, int threads,
                        SparseMode sparse);
    // out (N, K): the model's output (softmax probabilities when the last activation is softmax).
    void predict(float* out, const float* x, size_t N, size_t batch_size, int threads, SparseMode sparse);

    // regularisation penalty of the current weights.
    double penalty() const;

    // per-phase wall time of train_epoch, per team thread, accumulated while profiling is on: each
    // thread adds the time since its previous mark to the phase it just ended. names "setup",
    // "forward_<l>", "loss", "backward_<l>", "optimizer", "report", "column_bits", "row_scans",
    // "prefetch", "wait". "wait" is the time in the step's own barriers (one thread waiting for the
    // others); the layer phases of the general step include their team barriers. with the sweep
    // (sweep.h), "backward_0" is the sweep: layer 0's gradient, update and next-batch output. in
    // narrow-top steps (narrow_top_step) thread 0 runs the output layer ("forward_<L-1>" its logits,
    // "loss" the softmax and loss, "backward_<L-1>" its gradient, layer 0's dz and its update) and, with
    // one helper, this batch's "column_bits", while the others (sharing the bitmaps when there are
    // several) scan the next batch ("row_scans") and "prefetch" the one after; "report" is thread 0's
    // end of step (penalty, counters, progress, the next batch's rows).
    // set_profiling(true) turns it on and resets it; not while the model trains (ValueError).
    void set_profiling(bool on);
    // the phases, in the order profile() lists them. forward and backward have one entry per layer
    // (forward_<l>, backward_<l>); the slots are laid out from kPhaseNames (mlp_internal.h) alone, so
    // a phase or a layer added cannot shift another phase's slot.
    enum class Phase : size_t {
        setup, forward, loss, backward, optimizer, report, column_bits, row_scans, prefetch, wait, count
    };
    // one list per thread that has run since profiling was turned on, in team rank order; empty when off.
    std::vector<std::vector<std::pair<std::string, double>>> profile() const;

    // guards against two threads driving one model at once (see docs/ARCHITECTURE.md).
    bool try_lock() { return !busy_.exchange(true); }
    void unlock() { busy_.store(false); }
    bool busy() const { return busy_.load(); }

    // the first layer's choice for an input: sparse when fewer than this fraction of inputs are non-zero.
    static constexpr double kSparseDensity = 0.40;
    static bool choose_sparse(const float* x, size_t N, size_t IN, SparseMode mode);

  private:
    struct Workspace;  // per-batch buffers, sized for one batch size
    void ensure_workspace(std::unique_ptr<Workspace>& ws, size_t rows, bool training, int threads);
    struct Fusion {
        bool sweep = false;         // layer 0's backward and update are left to first_layer_sweep
        bool layer0_ready = false;  // layer 0's output was computed by the previous step's sweep
        size_t next_rows = 0;       // rows of the next batch, whose layer-0 output the sweep computes
    };
    void forward(Workspace& ws, size_t rows, bool training, bool sparse, Fusion fusion);
    void backward(Workspace& ws, size_t rows, bool sparse, Fusion fusion);
    // team-aware, no barrier: part (of kScanParts) of the next batch's row bitmaps.
    static constexpr int kScanParts = 3;
    void scan_next_rows(Workspace& ws, size_t rows, int part);
    bool can_sweep(bool sparse) const;
    // training transforms the input (dropout or noise): it is copied into the workspace's xin.
    bool input_transformed() const { return spec_.input_dropout > 0.0 || spec_.input_noise.active(); }
    // some layer has noise: the general step (the fused sweep does not apply noise).
    bool has_noise() const;
    // constraints or activity penalties: no look-ahead or narrow-top fusion (the general step)
    bool needs_general_step() const;
    // the constraints after a step's update: each thread its columns' (before the step's barrier), then
    // the master the rest and the penalties of the constrained layers (after it).
    void constrain_owned();
    void constrain_master();
    // adds the activity penalties of rows r to loss[r] (per row), from the workspace's outputs.
    void add_activity_loss(Workspace& ws, Range r, float* loss);
    bool narrow_top() const;
    // the rows of a step's batch, of the next one (scanned, and with the sweep half computed, one step
    // ahead; 0 without lookahead or at the end) and of the one after (prefetched).
    struct StepRows {
        size_t rows, next, ahead;
    };
    // the narrow-top step's first phase (train_epoch), ended by the caller's barrier; the master also
    // updates the output layer there (coef: this step's; penalty and opt.stop_on_nonfinite: to skip the
    // update of a batch whose loss the caller will find non-finite). team: the running team's size.
    void narrow_top_step(Workspace& ws, const StepRows& step, int team, const OptCoef& coef, double penalty,
                         const TrainOptions& opt);
    // the trained state (weights, optimizer moments and counters), for train_epoch's check_input.
    struct State;
    State save_state() const;
    void restore_state(const State& s);
    void eval_pass(const float* x, const int32_t* y, float* out, size_t N, size_t batch_size, int threads,
                   bool sparse, double* loss_sum, size_t* correct);

    Weights kernel(size_t l) const { return {params_.data() + kernel_off_[l], in_dim(l), spec_.layers[l].units, true}; }
    WeightGrads kernel_grad(size_t l) { return {grads_.data() + kernel_off_[l], in_dim(l), spec_.layers[l].units, true}; }
    const float* bias(size_t l) const { return spec_.layers[l].use_bias ? params_.data() + bias_off_[l] : nullptr; }
    size_t in_dim(size_t l) const { return l == 0 ? spec_.input_dim : spec_.layers[l - 1].units; }
    size_t classes() const { return spec_.layers.back().units; }
    OptimizerState opt_state() {
        return {m_.empty() ? nullptr : m_.data(), v_.empty() ? nullptr : v_.data(), vhat_.empty() ? nullptr : vhat_.data()};
    }

    MlpSpec spec_;
    uint64_t seed_;
    size_t arena_size_ = 0;
    std::vector<size_t> kernel_off_, bias_off_;
    std::vector<ParamInfo> info_;
    std::vector<Segment> segments_;
    aligned_vector<float> params_, grads_, m_, v_, vhat_;
    std::vector<double> penalty_segments_;
    std::vector<uint32_t> perm_;
    OptimizerConfig opt_;
    int64_t iterations_ = 0;
    double label_smoothing_ = 0.0;
    uint64_t dropout_step_ = 0;  // never reset: masks do not repeat across compile() calls
    std::unique_ptr<Workspace> train_ws_;
    std::vector<std::unique_ptr<Workspace>> eval_ws_;  // one per thread: inference splits rows
    struct PhaseClock;
    std::unique_ptr<PhaseClock> clock_;
    // profiling: this thread's phase p (of layer `layer` for forward and backward) ends; a no-op
    // unless profiling is on.
    void mark(Phase p, size_t layer = 0);
    std::atomic<bool> busy_{false};
};

}  // namespace pyreg

// bindings.cpp: the only file that includes pybind11; builds the module pyreg._core.
//
// every function validates its arrays with the GIL held (ndim, shapes that must agree, dtype via
// py::array_t without conversion for outputs, writeability, ranges) and throws invalid_argument
// (python ValueError) naming the argument, the expected and the received value; only then does it
// release the GIL and pass raw pointers to the kernels. the friendlier checks and conversions live in
// pyreg/kernels.py and pyreg/models.py; these ones make sure no input can reach out of bounds.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <cstring>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "common.h"
#include "dense.h"
#include "dropout.h"
#include "input_check.h"
#include "loss.h"
#include "mlp.h"
#include "optim.h"
#include "parallel.h"
#include "rng.h"
#include "simd.h"

namespace py = pybind11;
using namespace pyreg;

using farr = py::array_t<float, py::array::c_style>;
using iarr = py::array_t<int32_t, py::array::c_style>;
using u8arr = py::array_t<uint8_t, py::array::c_style>;

namespace {

std::string shape_str(const py::array& a) {
    std::ostringstream os;
    os << "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) os << (d ? ", " : "") << a.shape(d) << (a.ndim() == 1 ? "," : "");
    os << ")";
    return os.str();
}

std::string shape_str(const std::vector<py::ssize_t>& s) {
    std::ostringstream os;
    os << "(";
    for (size_t d = 0; d < s.size(); ++d) os << (d ? ", " : "") << s[d] << (s.size() == 1 ? "," : "");
    os << ")";
    return os.str();
}

void check_shape(const py::array& a, const std::vector<py::ssize_t>& shape, const char* name) {
    bool ok = a.ndim() == (py::ssize_t)shape.size();
    for (size_t d = 0; ok && d < shape.size(); ++d) ok = a.shape((py::ssize_t)d) == shape[d];
    PYREG_CHECK(ok, name << " must have shape " << shape_str(shape) << "; got " << shape_str(a));
}

void check_ndim(const py::array& a, py::ssize_t ndim, const char* name) {
    PYREG_CHECK(a.ndim() == ndim, name << " must be " << ndim << "-D; got " << a.ndim() << "-D array of shape "
                                       << shape_str(a));
}

void check_writeable(const py::array& a, const char* name) {
    PYREG_CHECK(a.writeable(), name << " must be writeable (it is written in place); got a read-only array");
}

int threads_arg(int threads) {
    PYREG_CHECK(threads >= 0, "threads must be >= 0 (0 = all cores); got " << threads);
    return threads > 0 ? threads : default_threads();
}

// the threads a standalone kernel call uses: waking a thread team costs microseconds, so a call with
// little work (`work` ~ floating-point operations) runs on the calling thread. results do not depend
// on the thread count, so this changes only the time.
int threads_for(int threads, double work) {
    const int T = threads_arg(threads);
    constexpr double kWorkPerThread = 2e5;
    return work < kWorkPerThread ? 1 : std::max(1, std::min(T, (int)(work / kWorkPerThread)));
}

Act act_arg(const std::string& name, bool fused_only) {
    const Act a = act_from_name(name);
    PYREG_CHECK(!fused_only || a == Act::relu || a == Act::linear,
                "activation must be 'relu' or 'linear'; got '" << name << "'");
    return a;
}

void check_labels(const iarr& labels, size_t K, const char* name) {
    const int32_t* p = labels.data();
    for (py::ssize_t i = 0; i < labels.size(); ++i)
        PYREG_CHECK(p[i] >= 0 && (size_t)p[i] < K, name << " must be in [0, " << K << "); got " << p[i]
                                                        << " at index " << i);
}

void check_rate(double rate) {
    PYREG_CHECK(rate >= 0.0 && rate < 1.0, "rate must be in [0, 1); got " << rate);
}

std::vector<const float*> row_pointers(const float* base, size_t rows, size_t cols) {
    std::vector<const float*> p(rows);
    for (size_t r = 0; r < rows; ++r) p[r] = base + r * cols;
    return p;
}

// ---------------------------------------------------------------------------------------------
// kernels

void bind_dense_forward(farr y, const farr& x, const farr& w, const py::object& b_obj, const std::string& act_name,
                        int threads, bool sparse) {
    check_ndim(x, 2, "x");
    check_ndim(w, 2, "w");
    const size_t B = (size_t)x.shape(0), IN = (size_t)x.shape(1), OUT = (size_t)w.shape(1);
    PYREG_CHECK((size_t)w.shape(0) == IN, "w must have shape (" << IN << ", units) to match x's " << IN
                                                                   << " features; got " << shape_str(w));
    check_shape(y, {(py::ssize_t)B, (py::ssize_t)OUT}, "y");
    check_writeable(y, "y");
    const float* bp = nullptr;
    farr b;
    if (!b_obj.is_none()) {
        b = b_obj.cast<farr>();
        check_shape(b, {(py::ssize_t)OUT}, "b");
        bp = b.data();
    }
    const Act act = act_arg(act_name, false);
    PYREG_CHECK(act != Act::softmax, "activation must be 'relu', 'linear', 'sigmoid' or 'tanh'; got 'softmax'");
    const int T = threads_for(threads, 2.0 * (double)B * IN * OUT);
    float* yp = y.mutable_data();
    const float* xp = x.data();
    const float* wp = w.data();
    py::gil_scoped_release nogil;
    const std::vector<const float*> rows = row_pointers(xp, B, IN);
    if (sparse) {
        const size_t stride = std::max(IN, B);
        std::vector<uint64_t> bits(B * bit_words(IN));
        std::vector<uint32_t> scratch((size_t)T * stride);
        const SparseInput sp{bits.data(), nullptr, scratch.data(), stride};
        run_team(T, [&] {
            sparse_scan_rows(sp, rows.data(), B, IN);
            team_barrier();
            dense_forward_sparse(yp, sp, rows.data(), Weights{wp, IN, OUT, false}, bp, B, act);
        });
    } else {
        run_team(T, [&] { dense_forward(yp, rows.data(), Weights{wp, IN, OUT, false}, bp, B, act); });
    }
}

void bind_dense_backward(const py::object& dx_obj, farr dw, const py::object& db_obj, const farr& dy, const farr& y,
                         const farr& x, const farr& w, const std::string& act_name, bool accumulate, int threads) {
    check_ndim(x, 2, "x");
    check_ndim(w, 2, "w");
    const size_t B = (size_t)x.shape(0), IN = (size_t)x.shape(1), OUT = (size_t)w.shape(1);
    PYREG_CHECK((size_t)w.shape(0) == IN, "w must have shape (" << IN << ", units) to match x's " << IN
                                                                   << " features; got " << shape_str(w));
    check_shape(dy, {(py::ssize_t)B, (py::ssize_t)OUT}, "dy");
    check_shape(y, {(py::ssize_t)B, (py::ssize_t)OUT}, "y");
    check_shape(dw, {(py::ssize_t)IN, (py::ssize_t)OUT}, "dw");
    check_writeable(dw, "dw");
    farr db, dx;
    float* dbp = nullptr;
    float* dxp = nullptr;
    if (!db_obj.is_none()) {
        db = db_obj.cast<farr>();
        check_shape(db, {(py::ssize_t)OUT}, "db");
        check_writeable(db, "db");
        dbp = db.mutable_data();
    }
    if (!dx_obj.is_none()) {
        dx = dx_obj.cast<farr>();
        check_shape(dx, {(py::ssize_t)B, (py::ssize_t)IN}, "dx");
        check_writeable(dx, "dx");
        dxp = dx.mutable_data();
    }
    const Act act = act_arg(act_name, false);
    PYREG_CHECK(act != Act::softmax, "activation must be 'relu', 'linear', 'sigmoid' or 'tanh'; got 'softmax'");
    const int T = threads_for(threads, 4.0 * (double)B * IN * OUT);
    const float *dyp = dy.data(), *yp = y.data(), *xp = x.data(), *wp = w.data();
    float* dwp = dw.mutable_data();
    py::gil_scoped_release nogil;
    // scratch, not zero-filled: every element is written before it is read
    std::unique_ptr<float[]> dz(new float[B * OUT]), wt(new float[dxp ? OUT * IN : 1]);
    const std::vector<const float*> xrows = row_pointers(xp, B, IN), dzrows = row_pointers(dz.get(), B, OUT);
    run_team(T, [&] {
        activation_backward(dz.get(), dyp, yp, nullptr, 1.0f, B, OUT, act);
        dense_backward_params(WeightGrads{dwp, IN, OUT, false}, dbp, dz.get(), xrows.data(), B, accumulate);
        team_barrier();  // dx reads every column of dz
        if (dxp) dense_backward_input(dxp, dzrows.data(), Weights{wp, IN, OUT, false}, wt.get(), B, accumulate);
    });
}

void bind_dropout_forward(farr x, u8arr mask, double rate, uint64_t seed, uint32_t stream, uint64_t step,
                          int threads) {
    check_ndim(x, 2, "x");
    check_writeable(x, "x");
    check_shape(mask, {x.shape(0), x.shape(1)}, "mask");
    check_writeable(mask, "mask");
    check_rate(rate);
    const size_t B = (size_t)x.shape(0), OUT = (size_t)x.shape(1);
    const int T = threads_for(threads, 40.0 * (double)B * OUT);  // ~40 operations per element (philox)
    float* xp = x.mutable_data();
    uint8_t* mp = mask.mutable_data();
    py::gil_scoped_release nogil;
    run_team(T, [&] { dropout_forward(xp, mp, B, OUT, rate, seed, stream, step); });
}

// the out-of-place form: y and mask allocated here, x copied into y while the GIL is held.
py::tuple bind_dropout_apply(const farr& x, double rate, uint64_t seed, uint32_t stream, uint64_t step, int threads) {
    check_ndim(x, 2, "x");
    check_rate(rate);
    farr y({x.shape(0), x.shape(1)});
    u8arr mask({x.shape(0), x.shape(1)});
    std::memcpy(y.mutable_data(), x.data(), (size_t)x.size() * sizeof(float));
    bind_dropout_forward(y, mask, rate, seed, stream, step, threads);
    return py::make_tuple(y, mask);
}

void bind_dropout_backward(farr dx, const farr& dy, const u8arr& mask, double rate, int threads) {
    check_ndim(dy, 2, "dy");
    check_shape(dx, {dy.shape(0), dy.shape(1)}, "dx");
    check_writeable(dx, "dx");
    check_shape(mask, {dy.shape(0), dy.shape(1)}, "mask");
    check_rate(rate);
    const size_t B = (size_t)dy.shape(0), OUT = (size_t)dy.shape(1);
    const int T = threads_for(threads, (double)B * OUT);
    float* dxp = dx.mutable_data();
    const float* dyp = dy.data();
    const uint8_t* mp = mask.data();
    py::gil_scoped_release nogil;
    run_team(T, [&] { dropout_backward(dxp, dyp, mp, B, OUT, rate); });
}

void check_same_1d(const farr& ref, const farr& a, const char* name, bool write) {
    PYREG_CHECK(a.ndim() == ref.ndim() && a.size() == ref.size() && std::equal(a.shape(), a.shape() + a.ndim(), ref.shape()),
                name << " must have the same shape as w " << shape_str(ref) << "; got " << shape_str(a));
    if (write) check_writeable(a, name);
}

void bind_optimizer_update(const std::string& kind, farr w, const farr& g, const py::object& m_obj,
                           const py::object& v_obj, const py::object& vhat_obj, int64_t iterations, double lr,
                           double beta_1, double beta_2, double epsilon, double momentum, bool nesterov, double l1,
                           double l2, double weight_decay, int threads) {
    check_writeable(w, "w");
    check_same_1d(w, g, "g", false);
    PYREG_CHECK(iterations >= 0, "iterations must be >= 0; got " << iterations);
    PYREG_CHECK(lr >= 0.0, "learning_rate must be >= 0; got " << lr);
    PYREG_CHECK(l1 >= 0.0, "l1 must be >= 0; got " << l1);
    PYREG_CHECK(l2 >= 0.0, "l2 must be >= 0; got " << l2);
    PYREG_CHECK(weight_decay >= 0.0, "weight_decay must be >= 0; got " << weight_decay);
    OptimizerConfig cfg;
    cfg.learning_rate = lr;
    cfg.weight_decay = weight_decay;
    farr m, v, vhat;
    OptimizerState st;
    if (kind == "adam") {
        cfg.kind = OptKind::adam;
        PYREG_CHECK(beta_1 >= 0.0 && beta_1 < 1.0, "beta_1 must be in [0, 1); got " << beta_1);
        PYREG_CHECK(beta_2 >= 0.0 && beta_2 < 1.0, "beta_2 must be in [0, 1); got " << beta_2);
        PYREG_CHECK(epsilon > 0.0, "epsilon must be > 0; got " << epsilon);
        cfg.beta_1 = beta_1;
        cfg.beta_2 = beta_2;
        cfg.epsilon = epsilon;
        PYREG_CHECK(!m_obj.is_none() && !v_obj.is_none(), "adam needs m and v arrays");
        m = m_obj.cast<farr>();
        v = v_obj.cast<farr>();
        check_same_1d(w, m, "m", true);
        check_same_1d(w, v, "v", true);
        st.m = m.mutable_data();
        st.v = v.mutable_data();
        if (!vhat_obj.is_none()) {
            vhat = vhat_obj.cast<farr>();
            check_same_1d(w, vhat, "vhat", true);
            st.vhat = vhat.mutable_data();
            cfg.amsgrad = true;
        }
    } else {
        PYREG_CHECK(kind == "sgd", "kind must be 'adam' or 'sgd'; got '" << kind << "'");
        cfg.kind = OptKind::sgd;
        PYREG_CHECK(momentum >= 0.0 && momentum <= 1.0, "momentum must be in [0, 1]; got " << momentum);
        cfg.momentum = momentum;
        cfg.nesterov = nesterov;
        if (momentum != 0.0) {
            PYREG_CHECK(!m_obj.is_none(), "sgd with momentum needs a momentum array m");
            m = m_obj.cast<farr>();
            check_same_1d(w, m, "m", true);
            st.m = m.mutable_data();
        }
    }
    const size_t n = (size_t)w.size();
    const int T = threads_for(threads, 20.0 * (double)n);
    float* wp = w.mutable_data();
    const float* gp = g.data();
    py::gil_scoped_release nogil;
    run_team(T, [&] { optimizer_step_flat(cfg, iterations, n, wp, gp, st, (float)l1, (float)l2); });
}

py::tuple bind_softmax_xent(const farr& logits, const iarr& labels, const py::object& dlogits_obj, double grad_scale,
                            int threads) {
    check_ndim(logits, 2, "logits");
    const size_t B = (size_t)logits.shape(0), K = (size_t)logits.shape(1);
    PYREG_CHECK(K > 0, "logits must have at least one class column; got shape " << shape_str(logits));
    check_shape(labels, {(py::ssize_t)B}, "labels");
    check_labels(labels, K, "labels");
    farr dl;
    float* dlp = nullptr;
    if (!dlogits_obj.is_none()) {
        dl = dlogits_obj.cast<farr>();
        check_shape(dl, {(py::ssize_t)B, (py::ssize_t)K}, "dlogits");
        check_writeable(dl, "dlogits");
        dlp = dl.mutable_data();
    }
    const int T = threads_for(threads, 30.0 * (double)B * K);
    farr loss_rows({(py::ssize_t)B});
    u8arr correct({(py::ssize_t)B});
    float* lp = loss_rows.mutable_data();
    uint8_t* cp = correct.mutable_data();
    const float* zp = logits.data();
    const int32_t* yp = labels.data();
    {
        py::gil_scoped_release nogil;
        run_team(T, [&] { softmax_xent(dlp, lp, cp, zp, yp, B, K, (float)grad_scale); });
    }
    return py::make_tuple(loss_rows, correct);
}

py::array_t<uint32_t> bind_philox_words(uint64_t seed, uint32_t stream, uint64_t step, uint64_t start, size_t n) {
    py::array_t<uint32_t> out({(py::ssize_t)n});
    uint32_t* p = out.mutable_data();
    for (size_t i = 0; i < n; ++i) p[i] = philox_word(seed, stream, step, start + i);
    return out;
}

// ---------------------------------------------------------------------------------------------
// input preparation: one threaded pass that checks finiteness (and converts float64 to float32),
// so that fit() on the 188 MB MNIST training set pays milliseconds, not a NumPy temporary.

py::tuple bind_prepare_features(const py::array& a, int threads) {
    const int T = threads_arg(threads);
    const size_t n = (size_t)a.size();
    if (py::isinstance<py::array_t<float>>(a) && (a.flags() & py::array::c_style)) {
        const float* p = static_cast<const float*>(a.data());
        int64_t bad;
        {
            py::gil_scoped_release nogil;
            bad = first_nonfinite(p, n, nullptr, T);
        }
        return py::make_tuple(a, bad);
    }
    PYREG_CHECK(py::isinstance<py::array_t<double>>(a) && (a.flags() & py::array::c_style),
                "prepare_features takes a C-contiguous float32 or float64 array");
    farr out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
    const double* p = static_cast<const double*>(a.data());
    float* o = out.mutable_data();
    int64_t bad;
    {
        py::gil_scoped_release nogil;
        bad = first_nonfinite(p, n, o, T);
    }
    return py::make_tuple(out, bad);
}

// ---------------------------------------------------------------------------------------------
// the trainer

MlpSpec spec_from(size_t input_dim, double input_dropout, const py::list& layers) {
    MlpSpec s;
    s.input_dim = input_dim;
    s.input_dropout = input_dropout;
    for (const py::handle& h : layers) {
        const py::dict d = h.cast<py::dict>();
        LayerSpec L;
        L.units = d["units"].cast<size_t>();
        L.act = act_from_name(d["activation"].cast<std::string>());
        L.use_bias = d.contains("use_bias") ? d["use_bias"].cast<bool>() : true;
        L.kernel_l1 = d.contains("kernel_l1") ? d["kernel_l1"].cast<float>() : 0.0f;
        L.kernel_l2 = d.contains("kernel_l2") ? d["kernel_l2"].cast<float>() : 0.0f;
        L.bias_l1 = d.contains("bias_l1") ? d["bias_l1"].cast<float>() : 0.0f;
        L.bias_l2 = d.contains("bias_l2") ? d["bias_l2"].cast<float>() : 0.0f;
        L.dropout = d.contains("dropout") ? d["dropout"].cast<double>() : 0.0;
        s.layers.push_back(L);
    }
    return s;
}

SparseMode sparse_arg(const std::string& s) {
    if (s == "auto") return SparseMode::automatic;
    if (s == "dense") return SparseMode::dense;
    PYREG_CHECK(s == "sparse", "sparse must be 'auto', 'dense' or 'sparse'; got '" << s << "'");
    return SparseMode::sparse;
}

// holds the model's busy flag for one call; refuses a second concurrent caller.
struct BusyGuard {
    Mlp& m;
    explicit BusyGuard(Mlp& mlp) : m(mlp) {
        if (!m.try_lock())
            throw std::runtime_error(
                "this model is already training or predicting in another thread; a pyreg model can be used by "
                "one thread at a time (use one model per thread)");
    }
    ~BusyGuard() { m.unlock(); }
};

void check_xy(const Mlp& m, const farr& x, const iarr* y, const char* xname) {
    check_ndim(x, 2, xname);
    PYREG_CHECK((size_t)x.shape(1) == m.spec().input_dim,
                xname << " must have " << m.spec().input_dim << " features per sample; got shape " << shape_str(x));
    if (y) {
        check_shape(*y, {x.shape(0)}, "y");
        check_labels(*y, m.spec().layers.back().units, "y");
    }
}

// ---------------------------------------------------------------------------------------------
// ctrl-c during a native epoch: while a fit runs on python's main thread, a small SIGINT handler is
// chained in front of python's. it records the signal (so the trainer notices it at the end of the
// current batch, without taking the GIL every batch) and calls python's handler, which marks the
// signal pending; PyErr_CheckSignals then raises KeyboardInterrupt in the usual way.

std::atomic<bool> g_sigint{false};
struct sigaction g_prev_sigint;

extern "C" void pyreg_on_sigint(int sig, siginfo_t* info, void* ctx) {
    g_sigint.store(true, std::memory_order_relaxed);
    if (g_prev_sigint.sa_flags & SA_SIGINFO) {
        if (g_prev_sigint.sa_sigaction) g_prev_sigint.sa_sigaction(sig, info, ctx);
    } else if (g_prev_sigint.sa_handler != SIG_DFL && g_prev_sigint.sa_handler != SIG_IGN) {
        g_prev_sigint.sa_handler(sig);
    }
}

struct SigintWatch {
    bool installed = false;
    SigintWatch() {
        py::module_ threading = py::module_::import("threading");
        if (!threading.attr("current_thread")().is(threading.attr("main_thread")())) return;
        struct sigaction current;
        if (sigaction(SIGINT, nullptr, &current) != 0) return;
        if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == pyreg_on_sigint)
            return;  // a fit run from inside another fit's callback: the outer watch is in place
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = pyreg_on_sigint;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        g_sigint.store(false);
        installed = sigaction(SIGINT, &sa, &g_prev_sigint) == 0;
    }
    ~SigintWatch() {
        if (installed) sigaction(SIGINT, &g_prev_sigint, nullptr);
    }
    bool fired() const { return installed && g_sigint.load(std::memory_order_relaxed); }
};

py::dict bind_train_epoch(Mlp& m, const farr& x, const iarr& y, size_t batch_size, bool shuffle, uint64_t epoch,
                          int threads, const std::string& sparse, const py::object& progress, double report_interval,
                          bool stop_on_nonfinite, bool lookahead, bool check_input) {
    check_xy(m, x, &y, "x");
    PYREG_CHECK(batch_size > 0, "batch_size must be positive; got " << batch_size);
    PYREG_CHECK(x.shape(0) > 0, "x must contain at least one sample; got shape " << shape_str(x));
    PYREG_CHECK(report_interval >= 0.0, "report_interval must be >= 0; got " << report_interval);
    const int T = threads_arg(threads);
    const SparseMode sm = sparse_arg(sparse);
    BusyGuard guard(m);
    SigintWatch sigint;
    std::unique_ptr<py::error_already_set> py_error;
    using clock = std::chrono::steady_clock;
    clock::time_point last = clock::now();
    // called after every batch without the GIL: takes the GIL only when a signal arrived, the report
    // interval has passed, or the epoch ends.
    ProgressFn fn = [&](const Progress& p) -> bool {
        const bool sig = sigint.fired();
        const clock::time_point now = clock::now();
        if (!sig && p.step != p.steps && std::chrono::duration<double>(now - last).count() < report_interval)
            return true;
        last = now;
        py::gil_scoped_acquire gil;
        try {
            if (sig) g_sigint.store(false);
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            if (progress.is_none()) return true;
            py::object r = progress(p.step, p.steps, p.seen, p.loss, p.accuracy);
            return r.is_none() || r.cast<bool>();
        } catch (py::error_already_set& e) {
            py_error.reset(new py::error_already_set(std::move(e)));
            return false;
        }
    };
    EpochResult r;
    {
        py::gil_scoped_release nogil;
        r = m.train_epoch(x.data(), y.data(), (size_t)x.shape(0), batch_size, shuffle, epoch, T, sm, fn,
                          stop_on_nonfinite, lookahead, check_input);
    }
    if (py_error) throw std::move(*py_error);
    py::dict d;
    d["loss"] = r.loss;
    d["accuracy"] = r.accuracy;
    d["steps"] = r.steps;
    d["seen"] = r.seen;
    d["stopped"] = r.stopped;
    d["nonfinite"] = r.nonfinite;
    d["nonfinite_step"] = r.nonfinite_step;
    d["sparse"] = r.used_sparse;
    d["sweep"] = r.used_sweep;
    d["bad_input"] = r.bad_input;
    return d;
}

py::tuple bind_evaluate(Mlp& m, const farr& x, const iarr& y, size_t batch_size, int threads, const std::string& sparse) {
    check_xy(m, x, &y, "x");
    PYREG_CHECK(batch_size > 0, "batch_size must be positive; got " << batch_size);
    PYREG_CHECK(x.shape(0) > 0, "x must contain at least one sample; got shape " << shape_str(x));
    const int T = threads_arg(threads);
    const SparseMode sm = sparse_arg(sparse);
    BusyGuard guard(m);
    EvalResult r;
    {
        py::gil_scoped_release nogil;
        r = m.evaluate(x.data(), y.data(), (size_t)x.shape(0), batch_size, T, sm);
    }
    return py::make_tuple(r.loss, r.accuracy);
}

farr bind_predict(Mlp& m, const farr& x, size_t batch_size, int threads, const std::string& sparse) {
    check_xy(m, x, nullptr, "x");
    PYREG_CHECK(batch_size > 0, "batch_size must be positive; got " << batch_size);
    const int T = threads_arg(threads);
    const SparseMode sm = sparse_arg(sparse);
    const size_t N = (size_t)x.shape(0), K = m.spec().layers.back().units;
    farr out({(py::ssize_t)N, (py::ssize_t)K});
    float* op = out.mutable_data();
    BusyGuard guard(m);
    {
        py::gil_scoped_release nogil;
        m.predict(op, x.data(), N, batch_size, T, sm);
    }
    return out;
}

// a numpy view of n floats owned by the Mlp (kept alive by the view's base).
farr view_of(float* data, size_t n, py::handle owner) {
    return farr({(py::ssize_t)n}, {(py::ssize_t)sizeof(float)}, data, owner);
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
    mod.doc() = "pyreg's compiled kernels and native MLP trainer (float32, C-contiguous, row-major).";

    mod.def(
        "build_info",
        [] {
            py::dict d;
            d["compiler"] = PYREG_COMPILER;
            d["cxx_flags"] = PYREG_CXX_FLAGS;
            d["build_type"] = PYREG_BUILD_TYPE;
            d["isa_compiled"] = PYREG_ISA_COMPILED;
            int n = 0;
            const char* const* names = available_isas(&n);
            py::list avail;
            for (int i = 0; i < n; ++i) avail.append(names[i]);
            d["isa_available"] = avail;
            d["isa_active"] = kernels().name;
            d["openmp"] = have_openmp();
            d["max_threads"] = default_threads();
            d["pybind11"] = std::to_string(PYBIND11_VERSION_MAJOR) + "." + std::to_string(PYBIND11_VERSION_MINOR) + "." +
                            std::to_string(PYBIND11_VERSION_PATCH);
            d["sanitizers"] = PYREG_SANITIZERS;
            return d;
        },
        "Facts about this build: compiler, flags, instruction sets, OpenMP and threads.");
    mod.def("set_isa", [](const std::string& name) { select_kernels(name.c_str()); }, py::arg("name"),
            "Selects the kernel table ('avx512', 'avx2' or 'generic'); raises ValueError if unavailable.");
    mod.def("get_isa", [] { return std::string(kernels().name); }, "The active kernel table's name.");
    mod.def("default_threads", &default_threads, "Threads used when threads=0: OMP_NUM_THREADS or all cores.");
    mod.attr("PANEL_WIDTH") = kColBlock;

    mod.def("dense_forward", &bind_dense_forward, py::arg("y").noconvert(), py::arg("x").noconvert(),
            py::arg("w").noconvert(), py::arg("b"), py::arg("activation"), py::arg("threads") = 0,
            py::arg("sparse") = false,
            "y (B, OUT) = act(x (B, IN) @ w (IN, OUT) + b (OUT)); float32, C-contiguous; y overwritten.");
    mod.def("prepare_features", &bind_prepare_features, py::arg("a"), py::arg("threads") = 0,
            "(float32 array, index of the first NaN/Inf or -1) for a C-contiguous float32 (checked, not copied) "
            "or float64 (converted) array; one threaded pass.");
    mod.def("input_is_sparse",
            [](const farr& x) {
                check_ndim(x, 2, "x");
                return Mlp::choose_sparse(x.data(), (size_t)x.shape(0), (size_t)x.shape(1), SparseMode::automatic);
            },
            py::arg("x").noconvert(),
            "Whether the sparse-input path is chosen for x (N, IN): fewer than 40% non-zeros in its first 1024 rows.");
    mod.def("dense_forward_ref",
            [](farr y, const farr& x, const farr& w, const farr& b, const std::string& act) {
                check_ndim(x, 2, "x");
                check_shape(w, {x.shape(1), w.ndim() == 2 ? w.shape(1) : -1}, "w");
                check_shape(b, {w.shape(1)}, "b");
                check_shape(y, {x.shape(0), w.shape(1)}, "y");
                check_writeable(y, "y");
                dense_forward_ref(y.mutable_data(), x.data(), w.data(), b.data(), (size_t)x.shape(0),
                                  (size_t)x.shape(1), (size_t)w.shape(1), act_arg(act, false));
            },
            py::arg("y").noconvert(), py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("b").noconvert(),
            py::arg("activation"), "Naive triple-loop reference of dense_forward (one thread).");
    mod.def("dense_backward", &bind_dense_backward, py::arg("dx"), py::arg("dw").noconvert(), py::arg("db"),
            py::arg("dy").noconvert(), py::arg("y").noconvert(), py::arg("x").noconvert(), py::arg("w").noconvert(),
            py::arg("activation"), py::arg("accumulate") = false, py::arg("threads") = 0,
            "From dy (B, OUT) and the forward output y: dz = dy * act'(y); dw (IN, OUT) = x^T dz, "
            "db (OUT) = sum_b dz, dx (B, IN) = dz w^T (each overwritten, or accumulated); dx and db may be None.");
    mod.def("adam_update_ref",
            [](farr w, const farr& g, farr m, farr v, int64_t iterations, double lr, double l1, double l2,
               double weight_decay) {
                check_ndim(w, 1, "w");
                check_writeable(w, "w");
                check_same_1d(w, g, "g", false);
                check_same_1d(w, m, "m", true);
                check_same_1d(w, v, "v", true);
                PYREG_CHECK(iterations >= 0, "iterations must be >= 0; got " << iterations);
                OptimizerConfig cfg;
                cfg.learning_rate = lr;
                cfg.weight_decay = weight_decay;
                adam_update_ref(w.mutable_data(), g.data(), m.mutable_data(), v.mutable_data(), (size_t)w.size(),
                                iterations, cfg, (float)l1, (float)l2);
            },
            py::arg("w").noconvert(), py::arg("g").noconvert(), py::arg("m").noconvert(), py::arg("v").noconvert(),
            py::arg("iterations"), py::arg("learning_rate") = 1e-3, py::arg("l1") = 0.0, py::arg("l2") = 0.0,
            py::arg("weight_decay") = 0.0, "Naive scalar reference of one Adam step (one thread), for tests.");
    mod.def("dropout_forward", &bind_dropout_forward, py::arg("x").noconvert(), py::arg("mask").noconvert(),
            py::arg("rate"), py::arg("seed"), py::arg("stream") = 0, py::arg("step") = 0, py::arg("threads") = 0,
            "Inverted dropout in place on x (B, OUT); mask (B, OUT) uint8 overwritten with the keep mask.");
    mod.def("dropout_apply", &bind_dropout_apply, py::arg("x").noconvert(), py::arg("rate"), py::arg("seed"),
            py::arg("stream") = 0, py::arg("step") = 0, py::arg("threads") = 0,
            "(y, mask): inverted dropout of x (B, OUT) float32 into a new y, with its uint8 keep mask.");
    mod.def("dropout_backward", &bind_dropout_backward, py::arg("dx").noconvert(), py::arg("dy").noconvert(),
            py::arg("mask").noconvert(), py::arg("rate"), py::arg("threads") = 0,
            "dx (B, OUT) = mask * dy / (1 - rate).");
    mod.def("optimizer_update", &bind_optimizer_update, py::arg("kind"), py::arg("w").noconvert(),
            py::arg("g").noconvert(), py::arg("m"), py::arg("v"), py::arg("vhat"), py::arg("iterations"),
            py::arg("learning_rate"), py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999, py::arg("epsilon") = 1e-7,
            py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("l1") = 0.0, py::arg("l2") = 0.0,
            py::arg("weight_decay") = 0.0, py::arg("threads") = 0,
            "One fused optimizer step in place on w, m, v (vhat) (all float32, same shape).");
    mod.def("softmax_xent", &bind_softmax_xent, py::arg("logits").noconvert(), py::arg("labels").noconvert(),
            py::arg("dlogits") = py::none(), py::arg("grad_scale") = 1.0, py::arg("threads") = 0,
            "Per-row cross-entropy (B,) float32 and correct (B,) uint8 from logits (B, K) and labels (B,) int32; "
            "dlogits (B, K) = (softmax - onehot) * grad_scale when given.");
    mod.def("philox_words", &bind_philox_words, py::arg("seed"), py::arg("stream"), py::arg("step"),
            py::arg("start"), py::arg("n"), "The dropout generator's 32-bit words for elements start..start+n-1.");

    py::class_<Mlp>(mod, "Mlp", "Native MLP: parameter arena, optimizer state and the epoch loop.")
        .def(py::init([](size_t input_dim, const py::list& layers, double input_dropout, uint64_t seed) {
                 return new Mlp(spec_from(input_dim, input_dropout, layers), seed);
             }),
             py::arg("input_dim"), py::arg("layers"), py::arg("input_dropout") = 0.0, py::arg("seed") = 0)
        .def_property_readonly("num_params", &Mlp::num_params)
        .def_property_readonly("arena_size", &Mlp::arena_size)
        .def_property("seed", &Mlp::seed, &Mlp::set_seed)
        .def_property("iterations", &Mlp::iterations, &Mlp::set_iterations)
        .def_property("dropout_step", &Mlp::dropout_step, &Mlp::set_dropout_step)
        .def_property_readonly("busy", &Mlp::busy)
        .def("param_info",
             [](const Mlp& m) {
                 py::list out;
                 for (const ParamInfo& p : m.param_info())
                     out.append(py::make_tuple(p.layer, p.name, p.offset, py::tuple(py::cast(p.shape))));
                 return out;
             },
             "[(layer, 'kernel'|'bias', offset, shape)] in keras' get_weights order. A kernel (IN, OUT) is stored "
             "in column panels: columns [64p, 64p+64) as a row-major (IN, width) block at offset + p*IN*64.")
        .def("arena", [](py::object self) {
                 Mlp& m = self.cast<Mlp&>();
                 return view_of(m.arena(), m.arena_size(), self);
             },
             "The parameter arena (arena_size,) float32, a view: writes change the model.")
        .def("optimizer_state",
             [](py::object self) {
                 Mlp& m = self.cast<Mlp&>();
                 py::dict d;
                 if (!m.opt_m().empty()) d["m"] = view_of(m.opt_m().data(), m.opt_m().size(), self);
                 if (!m.opt_v().empty()) d["v"] = view_of(m.opt_v().data(), m.opt_v().size(), self);
                 if (!m.opt_vhat().empty()) d["vhat"] = view_of(m.opt_vhat().data(), m.opt_vhat().size(), self);
                 return d;
             },
             "Views of the optimizer's moment arrays, laid out like the arena.")
        .def("set_optimizer",
             [](Mlp& m, const std::string& kind, double lr, double beta_1, double beta_2, double epsilon, bool amsgrad,
                double momentum, bool nesterov, double weight_decay) {
                 OptimizerConfig c;
                 PYREG_CHECK(kind == "adam" || kind == "sgd", "kind must be 'adam' or 'sgd'; got '" << kind << "'");
                 c.kind = kind == "adam" ? OptKind::adam : OptKind::sgd;
                 c.learning_rate = lr;
                 c.beta_1 = beta_1;
                 c.beta_2 = beta_2;
                 c.epsilon = epsilon;
                 c.amsgrad = amsgrad;
                 c.momentum = momentum;
                 c.nesterov = nesterov;
                 c.weight_decay = weight_decay;
                 PYREG_CHECK(!m.busy(), "cannot change the optimizer while the model is training");
                 m.set_optimizer(c);
             },
             py::arg("kind"), py::arg("learning_rate"), py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
             py::arg("epsilon") = 1e-7, py::arg("amsgrad") = false, py::arg("momentum") = 0.0,
             py::arg("nesterov") = false, py::arg("weight_decay") = 0.0)
        .def("set_profiling", &Mlp::set_profiling, py::arg("on"),
             "Turns per-phase, per-thread timing of train_epoch on (resetting it) or off.")
        .def(
            "profile",
            [](const Mlp& m) {
                py::list out;
                for (const auto& thread : m.profile()) {
                    py::dict phases;  // in the trainer's phase order
                    for (const auto& [name, seconds] : thread) phases[py::str(name)] = seconds;
                    out.append(phases);
                }
                return out;
            },
            "[{phase: seconds}], one dict per thread in team rank order, accumulated since profiling was "
            "turned on (empty when off); see Mlp::set_profiling in cpp/mlp.h for the phases.")
        .def("penalty", &Mlp::penalty, "Regularisation penalty of the current weights (added to the loss).")
        .def("train_epoch", &bind_train_epoch, py::arg("x").noconvert(), py::arg("y").noconvert(),
             py::arg("batch_size"), py::arg("shuffle") = true, py::arg("epoch") = 0, py::arg("threads") = 0,
             py::arg("sparse") = "auto", py::arg("progress") = py::none(), py::arg("report_interval") = 0.1,
             py::arg("stop_on_nonfinite") = true, py::arg("lookahead") = true, py::arg("check_input") = false,
             "One epoch over x (N, IN) float32 and y (N,) int32, in C++ without the GIL. progress(step, steps, "
             "seen, loss, accuracy) is called at most every report_interval seconds and after the last batch; "
             "returning False stops after the current batch. Ctrl-C stops within one batch (KeyboardInterrupt). "
             "lookahead: with sparse input, compute the next batch's first-layer output during this step's "
             "update (same results); pass False when progress may change the weights. check_input: x is not "
             "yet checked for NaN/Inf; if it holds one, nothing is trained (the model is restored) and the "
             "result's bad_input is True.")
        .def("evaluate", &bind_evaluate, py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("batch_size") = 32,
             py::arg("threads") = 0, py::arg("sparse") = "auto", "(loss, accuracy) in inference mode.")
        .def("predict", &bind_predict, py::arg("x").noconvert(), py::arg("batch_size") = 32, py::arg("threads") = 0,
             py::arg("sparse") = "auto", "The model's output (N, K) in inference mode.");
}

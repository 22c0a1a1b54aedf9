// bind_kernels.cpp: the standalone kernels of pyreg._core (dense forward and backward, dropout, the
// optimizer step, softmax cross-entropy, the input check, and the naive references the tests compare
// against): each checks its arguments (bind_common.h), releases the GIL and runs on a thread team
// sized to its work.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bind_common.h"
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

namespace pyreg {
namespace bind {

namespace {

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

void check_rate(double rate) {
    PYREG_CHECK(rate >= 0.0 && rate < 1.0, "rate must be in [0, 1); got " << rate);
}

std::vector<const float*> row_pointers(const float* base, size_t rows, size_t cols) {
    std::vector<const float*> p(rows);
    for (size_t r = 0; r < rows; ++r) p[r] = base + r * cols;
    return p;
}

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

}  // namespace

void bind_kernels(py::module_& mod) {
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

}

}  // namespace bind
}  // namespace pyreg

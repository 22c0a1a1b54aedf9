// bind_trainer.cpp: class Mlp of pyreg._core, the native trainer (cpp/mlp.h): its construction from
// the layer dicts pyreg/models.py builds, views of its arena and optimizer state, the profile, and
// train_epoch, evaluate and predict, which hold the model's busy flag and run without the GIL. a fit
// on python's main thread answers Ctrl-C within one batch (bind_signals.h).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bind_common.h"
#include "bind_signals.h"
#include "common.h"
#include "mlp.h"
#include "optim.h"
#include "parallel.h"
#include "schedule.h"

namespace pyreg {
namespace bind {

namespace {

// a constraint from pyreg/constraints.py's native dict {kind, axis, min_value, max_value, rate}; none if absent.
ConstraintSpec constraint_from(const py::dict& layer, const char* key) {
    ConstraintSpec c;
    if (!layer.contains(key) || layer[key].is_none()) return c;
    const py::dict d = layer[key].cast<py::dict>();
    const int kind = d["kind"].cast<int>(), axis = d["axis"].cast<int>();
    PYREG_CHECK(kind >= 0 && kind <= 4, key << ": unknown constraint kind " << kind);
    PYREG_CHECK(axis >= 0 && axis <= 2, key << ": unknown norm axis " << axis);
    c.kind = (ConstraintKind)kind;
    c.axis = (NormAxis)axis;
    const double rate = d["rate"].cast<double>();
    c.min_value = (float)d["min_value"].cast<double>();
    c.max_value = (float)d["max_value"].cast<double>();
    c.rate = (float)rate;
    c.one_minus_rate = (float)(1.0 - rate);  // keras: (1 - rate) in python, then float32
    return c;
}

MlpSpec spec_from(size_t input_dim, double input_dropout, const py::list& layers, const std::string& input_noise,
                  double input_noise_param) {
    MlpSpec s;
    s.input_dim = input_dim;
    s.input_dropout = input_dropout;
    s.input_noise = {noise_kind_from_name(input_noise), input_noise_param};
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
        if (d.contains("noise"))  // a noise layer on this layer's output (cpp/noise.h)
            L.noise = {noise_kind_from_name(d["noise"].cast<std::string>()),
                       d.contains("noise_param") ? d["noise_param"].cast<double>() : 0.0};
        L.kernel_constraint = constraint_from(d, "kernel_constraint");
        L.bias_constraint = constraint_from(d, "bias_constraint");
        L.activity_l1 = d.contains("activity_l1") ? d["activity_l1"].cast<float>() : 0.0f;
        L.activity_l2 = d.contains("activity_l2") ? d["activity_l2"].cast<float>() : 0.0f;
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

py::dict bind_train_epoch(Mlp& m, const farr& x, const iarr& y, size_t batch_size, bool shuffle, uint64_t epoch,
                          int threads, const std::string& sparse, const py::object& progress, double report_interval,
                          bool stop_on_nonfinite, bool lookahead, bool check_input) {
    check_xy(m, x, &y, "x");
    PYREG_CHECK(batch_size > 0, "batch_size must be positive; got " << batch_size);
    PYREG_CHECK(x.shape(0) > 0, "x must contain at least one sample; got shape " << shape_str(x));
    PYREG_CHECK(report_interval >= 0.0, "report_interval must be >= 0; got " << report_interval);
    TrainOptions opt;
    opt.batch_size = batch_size;
    opt.shuffle = shuffle;
    opt.epoch = epoch;
    opt.threads = threads_arg(threads);
    opt.sparse = sparse_arg(sparse);
    opt.stop_on_nonfinite = stop_on_nonfinite;
    opt.lookahead = lookahead;
    opt.check_input = check_input;
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
            if (sig) sigint.clear();
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
        r = m.train_epoch(x.data(), y.data(), (size_t)x.shape(0), opt, fn);
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

// a learning-rate schedule from the dict pyreg.optimizers.schedules builds (its _native_args()).
LrSchedule schedule_from(const py::dict& d) {
    LrSchedule s;
    const std::string kind = d["kind"].cast<std::string>();
    if (kind == "exponential" || kind == "inverse_time") {
        s.kind = kind == "exponential" ? ScheduleKind::exponential : ScheduleKind::inverse_time;
        s.decay_rate = d["decay_rate"].cast<double>();
        s.staircase = d["staircase"].cast<bool>();
    } else if (kind == "cosine") {
        s.kind = ScheduleKind::cosine;
        s.alpha = d["alpha"].cast<double>();
        s.warmup = !d["warmup_target"].is_none();
        if (s.warmup) s.warmup_target = d["warmup_target"].cast<double>();
        s.warmup_steps = d["warmup_steps"].cast<double>();
    } else if (kind == "piecewise") {
        s.kind = ScheduleKind::piecewise;
        s.boundaries = d["boundaries"].cast<std::vector<int64_t>>();
        s.values = d["values"].cast<std::vector<float>>();
        PYREG_CHECK(!s.boundaries.empty() && s.values.size() == s.boundaries.size() + 1,
                    "a piecewise schedule needs len(values) == len(boundaries) + 1 >= 2");
        return s;
    } else {
        PYREG_CHECK(false, "schedule kind must be 'exponential', 'inverse_time', 'piecewise' or 'cosine'; got '"
                               << kind << "'");
    }
    s.initial = d["initial_learning_rate"].cast<double>();
    s.decay_steps = d["decay_steps"].cast<double>();
    PYREG_CHECK(s.decay_steps > 0.0, "decay_steps must be > 0; got " << s.decay_steps);
    return s;
}

// a numpy view of n floats owned by the Mlp (kept alive by the view's base).
farr view_of(float* data, size_t n, py::handle owner) {
    return farr({(py::ssize_t)n}, {(py::ssize_t)sizeof(float)}, data, owner);
}


}  // namespace

void bind_trainer(py::module_& mod) {
    mod.def(
        "lr_schedule_value",
        [](const py::dict& schedule, int64_t step) { return schedule_from(schedule).lr_at(step); },
        py::arg("schedule"), py::arg("step"),
        "The float32 learning rate of a schedule dict (pyreg.optimizers.schedules) at a step, as the trainer "
        "computes it.");
    py::class_<Mlp>(mod, "Mlp", "Native MLP: parameter arena, optimizer state and the epoch loop.")
        .def(py::init([](size_t input_dim, const py::list& layers, double input_dropout, uint64_t seed,
                         const std::string& input_noise, double input_noise_param) {
                 return new Mlp(spec_from(input_dim, input_dropout, layers, input_noise, input_noise_param), seed);
             }),
             py::arg("input_dim"), py::arg("layers"), py::arg("input_dropout") = 0.0, py::arg("seed") = 0,
             py::arg("input_noise") = "", py::arg("input_noise_param") = 0.0)
        .def_property_readonly("num_params", &Mlp::num_params)
        .def_property_readonly("arena_size", &Mlp::arena_size)
        .def_property("seed", &Mlp::seed, &Mlp::set_seed)
        .def_property("label_smoothing", &Mlp::label_smoothing, &Mlp::set_label_smoothing,
                      "categorical cross-entropy's label smoothing (0 = none), in training and evaluate")
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
                double momentum, bool nesterov, double weight_decay, const py::object& schedule) {
                 OptimizerConfig c;
                 if (!schedule.is_none()) c.schedule = schedule_from(schedule.cast<py::dict>());
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
             py::arg("nesterov") = false, py::arg("weight_decay") = 0.0, py::arg("schedule") = py::none(),
             "Sets the optimizer and resets its state. schedule: None (a constant learning_rate) or a dict "
             "from pyreg.optimizers.schedules, evaluated natively at every step's counter.")
        .def(
            "set_learning_rate",
            [](Mlp& m, double lr, const py::object& schedule) {
                PYREG_CHECK(!m.busy(), "cannot change the learning rate while the model is training");
                m.set_learning_rate(lr, schedule.is_none() ? LrSchedule{} : schedule_from(schedule.cast<py::dict>()));
            },
            py::arg("learning_rate"), py::arg("schedule") = py::none(),
            "A new learning rate (a constant, or a schedule dict) from the next step on; the moments and "
            "iterations are kept.")
        .def_property_readonly(
            "learning_rate",
            [](const Mlp& m) {
                const OptimizerConfig& c = m.optimizer();
                return c.schedule.active() ? c.schedule.lr_at(m.iterations()) : (float)c.learning_rate;
            },
            "The float32 learning rate of the next step (a schedule's value at iterations).")
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

}  // namespace bind
}  // namespace pyreg

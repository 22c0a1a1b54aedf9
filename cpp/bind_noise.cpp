// bind_noise.cpp: the noise layers' training-mode transform (cpp/noise.h) as a standalone kernel of
// pyreg._core, for tests and pyreg.kernels.noise_forward.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>

#include "bind_common.h"
#include "noise.h"
#include "parallel.h"

namespace pyreg {
namespace bind {

namespace {

// (y, factor): the noise layer `kind` applied to x (B, OUT) float32 as the trainer applies it at
// `site` (0 the input, l + 1 layer l's output) in step `step`; factor is d y / d x (ones for
// gaussian_noise). runs on exactly `threads` threads (0: all cores).
py::tuple bind_noise_apply(const farr& x, const std::string& kind, double param, uint64_t seed, uint32_t site,
                           uint64_t step, int threads) {
    check_ndim(x, 2, "x");
    const NoiseSpec n{noise_kind_from_name(kind), param};
    check_noise(n);
    const size_t B = (size_t)x.shape(0), OUT = (size_t)x.shape(1);
    farr y({x.shape(0), x.shape(1)});
    farr factor({x.shape(0), x.shape(1)});
    std::memcpy(y.mutable_data(), x.data(), B * OUT * sizeof(float));
    float* fp = factor.mutable_data();
    for (size_t i = 0; i < B * OUT; ++i) fp[i] = 1.0f;
    const int T = threads_arg(threads);
    float* yp = y.mutable_data();
    {
        py::gil_scoped_release nogil;
        run_team(T, [&] { noise_forward(yp, n.kind == NoiseKind::gaussian_noise ? nullptr : fp, B, OUT, n, seed, site, step); });
    }
    return py::make_tuple(y, factor);
}

}  // namespace

void bind_noise(py::module_& mod) {
    mod.def("noise_apply", &bind_noise_apply, py::arg("x").noconvert(), py::arg("kind"), py::arg("param"),
            py::arg("seed"), py::arg("site"), py::arg("step"), py::arg("threads") = 0,
            "(y, factor): a noise layer's training transform of x (B, OUT) float32 and its d y / d x, as the "
            "trainer draws it at (seed, site, step).");
}

}  // namespace bind
}  // namespace pyreg

// bind_common.h: what the binding files (bind_*.cpp, the only ones that include pybind11) share: the
// array types they accept and the checks that turn a bad argument into a ValueError naming it.
//
// every bound function validates its arrays with the GIL held (ndim, shapes that must agree, dtype via
// py::array_t without conversion for outputs, writeability, ranges) and throws invalid_argument
// (python ValueError) naming the argument, the expected and the received value; only then does it
// release the GIL and pass raw pointers to the kernels. the friendlier checks and conversions live in
// pyreg/kernels.py and pyreg/models.py; these ones make sure no input can reach out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "common.h"
#include "parallel.h"

namespace pyreg {
namespace bind {

namespace py = pybind11;

using farr = py::array_t<float, py::array::c_style>;
using iarr = py::array_t<int32_t, py::array::c_style>;
using u8arr = py::array_t<uint8_t, py::array::c_style>;

// the parts of the module, added by PYBIND11_MODULE (bind_module.cpp) in this order.
void bind_kernels(py::module_& mod);  // bind_kernels.cpp: the standalone kernels
void bind_trainer(py::module_& mod);  // bind_trainer.cpp: class Mlp, the native trainer

inline std::string shape_str(const py::array& a) {
    std::ostringstream os;
    os << "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) os << (d ? ", " : "") << a.shape(d) << (a.ndim() == 1 ? "," : "");
    os << ")";
    return os.str();
}

inline std::string shape_str(const std::vector<py::ssize_t>& s) {
    std::ostringstream os;
    os << "(";
    for (size_t d = 0; d < s.size(); ++d) os << (d ? ", " : "") << s[d] << (s.size() == 1 ? "," : "");
    os << ")";
    return os.str();
}

inline void check_shape(const py::array& a, const std::vector<py::ssize_t>& shape, const char* name) {
    bool ok = a.ndim() == (py::ssize_t)shape.size();
    for (size_t d = 0; ok && d < shape.size(); ++d) ok = a.shape((py::ssize_t)d) == shape[d];
    PYREG_CHECK(ok, name << " must have shape " << shape_str(shape) << "; got " << shape_str(a));
}

inline void check_ndim(const py::array& a, py::ssize_t ndim, const char* name) {
    PYREG_CHECK(a.ndim() == ndim, name << " must be " << ndim << "-D; got " << a.ndim() << "-D array of shape "
                                       << shape_str(a));
}

inline void check_writeable(const py::array& a, const char* name) {
    PYREG_CHECK(a.writeable(), name << " must be writeable (it is written in place); got a read-only array");
}

inline int threads_arg(int threads) {
    PYREG_CHECK(threads >= 0, "threads must be >= 0 (0 = all cores); got " << threads);
    return threads > 0 ? threads : default_threads();
}

inline void check_labels(const iarr& labels, size_t K, const char* name) {
    const int32_t* p = labels.data();
    for (py::ssize_t i = 0; i < labels.size(); ++i)
        PYREG_CHECK(p[i] >= 0 && (size_t)p[i] < K, name << " must be in [0, " << K << "); got " << p[i]
                                                        << " at index " << i);
}

}  // namespace bind
}  // namespace pyreg

// bind_module.cpp: the module pyreg._core: facts about the build and the kernel table in use, then
// the kernels (bind_kernels.cpp) and the trainer (bind_trainer.cpp).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bind_common.h"
#include "parallel.h"
#include "simd.h"

namespace py = pybind11;
using namespace pyreg;

namespace pyreg::bind {
void bind_noise(py::module_& mod);  // bind_noise.cpp: the noise layers' transform
}

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

    bind::bind_kernels(mod);
    bind::bind_trainer(mod);
    bind::bind_noise(mod);
}

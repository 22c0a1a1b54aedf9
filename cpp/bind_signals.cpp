// bind_signals.cpp: the SIGINT watch of a native epoch (bind_signals.h).
#include <pybind11/pybind11.h>

#include <signal.h>

#include <atomic>
#include <cstring>

#include "bind_signals.h"

namespace py = pybind11;

namespace pyreg {
namespace bind {

namespace {

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

}  // namespace

SigintWatch::SigintWatch() {
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
    installed_ = sigaction(SIGINT, &sa, &g_prev_sigint) == 0;
}

SigintWatch::~SigintWatch() {
    if (installed_) sigaction(SIGINT, &g_prev_sigint, nullptr);
}

bool SigintWatch::fired() const { return installed_ && g_sigint.load(std::memory_order_relaxed); }

void SigintWatch::clear() { g_sigint.store(false); }

}  // namespace bind
}  // namespace pyreg

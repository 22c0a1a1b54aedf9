// bind_signals.h: Ctrl-C during a native epoch. while a fit runs on python's main thread, a small
// SIGINT handler is chained in front of python's. it records the signal (so the trainer notices it at
// the end of the current batch, without taking the GIL every batch) and calls python's handler, which
// marks the signal pending; PyErr_CheckSignals then raises KeyboardInterrupt in the usual way.
// (bind_signals.cpp; used by bind_trainer.cpp's train_epoch.)
#pragma once

namespace pyreg {
namespace bind {

// installs the handler for its lifetime when constructed on python's main thread with the GIL held
// (elsewhere, or inside another watch, it does nothing); the previous handler is put back after.
class SigintWatch {
  public:
    SigintWatch();
    ~SigintWatch();
    SigintWatch(const SigintWatch&) = delete;
    SigintWatch& operator=(const SigintWatch&) = delete;
    // whether a SIGINT arrived since the watch began or since clear(); safe without the GIL.
    bool fired() const;
    // forgets the signal seen (python's own handler has marked it pending).
    void clear();

  private:
    bool installed_ = false;
};

}  // namespace bind
}  // namespace pyreg

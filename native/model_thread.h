// One owner thread per loaded model.
//
// A ModelThread is a plain C++ thread with a FIFO queue of jobs; it runs every job of one
// model (model.execute, model.forward) in order, so no libuv pool thread is ever held while a
// request waits or runs, and two models, each with its own thread, run side by side. It knows
// nothing of Node-API: results go back to JS through a JsChannel (js_channel.h) that the job
// carries.
//
// A job is claimed before it runs: TryStart() on the owner thread and TryCancel() on any
// thread race on one atomic state, so a job cancelled while queued (its AbortSignal fired, or
// dispose()) is skipped and never reaches the model.
//
// Lifetime: the thread's loop holds its own shared_ptr to the queue state, so the ModelThread
// object may go away (or the thread be detached) while a job is still running: nothing the
// thread touches is freed under it. Shutdown() closes the queue (queued jobs are returned to
// the caller, which settles them), then joins the thread when it is idle, and otherwise
// detaches it: a forward that never returns never blocks dispose(), a worker's termination or
// process exit.
//
// Process exit while an owner thread is inside a job (process.exit() during a forward, or a
// detached thread still running): exit() would run the static destructors of LibTorch while
// that thread uses them (a crash at exit). On Linux, the first ModelThread registers an
// on_exit handler (after LibTorch's own statics were built by loading the model, so it runs
// before their destructors) that ends the process with _exit(status) when a job is still
// running; when none is, exit goes on normally.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace scire {

class ThreadJob {
 public:
  virtual ~ThreadJob() = default;
  /** Runs on the owner thread after a successful TryStart(). Must not throw. */
  virtual void RunOnOwner() noexcept = 0;

  /** Queued -> running; false when the job was cancelled first. Owner thread. */
  bool TryStart() { return Transition(kQueued, kRunning); }
  /** Queued -> cancelled; false when it already started (or was cancelled). Any thread. */
  bool TryCancel() { return Transition(kQueued, kCancelled); }
  bool Started() const { return state_.load() == kRunning; }

 private:
  enum State : int { kQueued, kRunning, kCancelled };
  bool Transition(State from, State to) {
    int expected = from;
    return state_.compare_exchange_strong(expected, to);
  }
  std::atomic<int> state_{kQueued};
};
using ThreadJobPtr = std::shared_ptr<ThreadJob>;

class ModelThread {
 public:
  /** Starts the thread; `name` (15 chars at most are kept) shows in debuggers and `top -H`;
   *  `onStart` runs first on the new thread (e.g. its LibTorch thread settings). */
  ModelThread(const std::string& name, std::function<void()> onStart);
  /** Detaches a thread still running (never std::terminate, never blocks). */
  ~ModelThread();
  ModelThread(const ModelThread&) = delete;
  ModelThread& operator=(const ModelThread&) = delete;

  /** Appends a job; false when the queue is closed. Any thread. */
  bool Post(ThreadJobPtr job);

  /**
   * Closes the queue (later Posts fail) and moves the jobs that had not started into
   * `notStarted`, for the caller to settle. When no job is running the thread is joined (it
   * exits at once); otherwise it is detached and ends by itself after the running job.
   * Returns true when joined. Idempotent.
   */
  bool Shutdown(std::vector<ThreadJobPtr>* notStarted);

  /** Jobs queued and not started (cancelled ones included until the thread skips them). */
  size_t Queued() const;
  /** A job is running now. */
  bool Busy() const;

  /** Jobs running now on all owner threads (process-wide). */
  static int RunningJobs();

 private:
  struct Shared {
    mutable std::mutex mutex;
    std::condition_variable wake;  // a job was posted or the queue closed
    std::deque<ThreadJobPtr> queue;
    bool closed = false;
    bool busy = false;
  };
  static void Loop(std::shared_ptr<Shared> shared, std::function<void()> onStart);

  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace scire

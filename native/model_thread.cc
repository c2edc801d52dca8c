#include "model_thread.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#if defined(__linux__)
#include <pthread.h>
#include <unistd.h>
#endif

namespace scire {

namespace {

std::atomic<int> gRunningJobs{0};

#if defined(__linux__)
void ExitWhileJobsRun(int status, void*) {
  if (gRunningJobs.load() == 0) return;  // no job running: a normal exit
  std::fflush(nullptr);
  _exit(status);  // skip the static destructors a running forward still uses
}
#endif

void RegisterExitGuard() {
#if defined(__linux__)
  static std::once_flag once;
  std::call_once(once, [] { on_exit(&ExitWhileJobsRun, nullptr); });
#endif
}

}  // namespace

int ModelThread::RunningJobs() { return gRunningJobs.load(); }

ModelThread::ModelThread(const std::string& name, std::function<void()> onStart)
    : shared_(std::make_shared<Shared>()) {
  RegisterExitGuard();
  thread_ = std::thread(&ModelThread::Loop, shared_, std::move(onStart));
#if defined(__linux__)
  pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
#endif
}

ModelThread::~ModelThread() {
  // Normally shut down already. Otherwise: queued jobs are dropped, an idle thread is joined,
  // a busy one detached (the loop owns `shared`: safe to let it finish alone).
  try {
    Shutdown(nullptr);
  } catch (...) {
    // std::system_error from join: nothing better to do in a destructor
  }
}

void ModelThread::Loop(std::shared_ptr<Shared> shared, std::function<void()> onStart) {
  if (onStart) {
    try {
      onStart();
    } catch (...) {
      // settings only: the thread serves its jobs with the defaults
    }
  }
  for (;;) {
    ThreadJobPtr job;
    {
      std::unique_lock<std::mutex> lock(shared->mutex);
      shared->wake.wait(lock, [&] { return shared->closed || !shared->queue.empty(); });
      if (shared->queue.empty()) return;  // closed and drained
      job = std::move(shared->queue.front());
      shared->queue.pop_front();
      if (!job->TryStart()) continue;  // cancelled while queued: never run
      shared->busy = true;
      gRunningJobs.fetch_add(1);
    }
    job->RunOnOwner();
    job.reset();  // drop the job (and the model it holds) on this thread, before going idle
    gRunningJobs.fetch_sub(1);
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->busy = false;
  }
}

bool ModelThread::Post(ThreadJobPtr job) {
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (shared_->closed) return false;
    shared_->queue.push_back(std::move(job));
  }
  shared_->wake.notify_one();
  return true;
}

bool ModelThread::Shutdown(std::vector<ThreadJobPtr>* notStarted) {
  bool busy;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->closed = true;
    for (auto& job : shared_->queue) {
      if (notStarted) notStarted->push_back(std::move(job));
    }
    shared_->queue.clear();
    busy = shared_->busy;  // with the queue empty and closed, an idle loop exits as soon as it wakes
  }
  shared_->wake.notify_all();
  if (!thread_.joinable()) return false;
  if (busy || std::this_thread::get_id() == thread_.get_id()) {
    thread_.detach();
    return false;
  }
  thread_.join();
  return true;
}

size_t ModelThread::Queued() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->queue.size();
}

bool ModelThread::Busy() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->busy;
}

}  // namespace scire

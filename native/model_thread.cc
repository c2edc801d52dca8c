#include "model_thread.h"

#if defined(__linux__)
#include <pthread.h>
#endif

namespace scire {

ModelThread::ModelThread(const std::string& name) : shared_(std::make_shared<Shared>()) {
  thread_ = std::thread(&ModelThread::Loop, shared_);
#if defined(__linux__)
  pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
#endif
}

ModelThread::~ModelThread() {
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->closed = true;
  }
  shared_->wake.notify_all();
  if (thread_.joinable()) thread_.detach();  // the loop owns `shared`: safe to let it finish alone
}

void ModelThread::Loop(std::shared_ptr<Shared> shared) {
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
    }
    job->RunOnOwner();
    job.reset();  // drop the job (and the model it holds) on this thread, before going idle
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
  if (busy) {
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

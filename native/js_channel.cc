#include "js_channel.h"

#include <string>

#include "errors.h"

namespace scire {

std::shared_ptr<JsChannel> JsChannel::Open(napi_env env, const char* name) {
  std::shared_ptr<JsChannel> channel(new JsChannel());
  channel->state_ = std::make_shared<State>();
  channel->env_ = env;
  napi_value resourceName;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resourceName) != napi_ok) {
    throw ScireError(ErrorKind::kError, std::string(name) + ": could not create a thread-safe function");
  }
  auto* finalizeData = new std::shared_ptr<State>(channel->state_);
  napi_threadsafe_function tsfn = nullptr;
  const napi_status status =
      napi_create_threadsafe_function(env, nullptr, nullptr, resourceName, /*max_queue_size=*/0,
                                      /*initial_thread_count=*/1, finalizeData, &JsChannel::Finalize, nullptr,
                                      &JsChannel::CallJs, &tsfn);
  if (status != napi_ok) {
    delete finalizeData;
    throw ScireError(ErrorKind::kError, std::string(name) + ": could not create a thread-safe function");
  }
  napi_unref_threadsafe_function(env, tsfn);
  channel->state_->tsfn = tsfn;
  return channel;
}

JsChannel::~JsChannel() {
  // Normally closed by the owner already; never touch a thread-safe function from here (the
  // destructor may run on any thread): dropping the pointer is enough, Node frees it at
  // environment teardown.
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->tsfn = nullptr;
}

bool JsChannel::Post(Task task) {
  auto* data = new Task(std::move(task));
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->tsfn == nullptr ||
      napi_call_threadsafe_function(state_->tsfn, data, napi_tsfn_nonblocking) != napi_ok) {
    delete data;
    return false;
  }
  return true;
}

void JsChannel::Ref() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->tsfn != nullptr && refs_++ == 0) napi_ref_threadsafe_function(env_, state_->tsfn);
}

void JsChannel::Unref() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->tsfn != nullptr && refs_ > 0 && --refs_ == 0) napi_unref_threadsafe_function(env_, state_->tsfn);
}

void JsChannel::Close(bool abort) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->tsfn == nullptr) return;
  napi_release_threadsafe_function(state_->tsfn, abort ? napi_tsfn_abort : napi_tsfn_release);
  state_->tsfn = nullptr;
  refs_ = 0;
}

bool JsChannel::Closed() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->tsfn == nullptr;
}

void JsChannel::CallJs(napi_env env, napi_value, void*, void* data) {
  auto* task = static_cast<Task*>(data);
  if (env != nullptr) {
    try {
      (*task)(env);
    } catch (...) {
      // A task settles promises and calls user callbacks; both catch their own failures. An
      // exception here can only come from a dying environment: nothing to report it to.
    }
  }
  delete task;  // closures own no Napi references (see the header)
}

void JsChannel::Finalize(napi_env, void* data, void*) {
  auto* state = static_cast<std::shared_ptr<State>*>(data);
  {
    std::lock_guard<std::mutex> lock((*state)->mutex);
    (*state)->tsfn = nullptr;  // Node frees it after this returns
  }
  delete state;
}

}  // namespace scire

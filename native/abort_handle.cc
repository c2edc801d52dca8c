#include "abort_handle.h"

#include <string>

namespace scire {
namespace {

constexpr napi_type_tag kAbortTag = {0x51d0a3c2e87f4b19ULL, 0x8e2b7c6d10f9a345ULL};
constexpr const char* kFlagKey = "__scireAbortFlag";

}  // namespace

Napi::Value CreateAbortHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto flag = std::make_shared<AbortFlag>();
  auto token = Napi::External<AbortFlagPtr>::New(env, new AbortFlagPtr(flag), [](Napi::Env, AbortFlagPtr* p) { delete p; });
  token.TypeTag(&kAbortTag);
  Napi::Object handle = Napi::Object::New(env);
  handle.DefineProperties({
      Napi::PropertyDescriptor::Value(kFlagKey, token, napi_default),  // hidden: not enumerable
      Napi::PropertyDescriptor::Value(
          "abort",
          Napi::Function::New(
              env,
              [flag](const Napi::CallbackInfo&) {
                if (flag->IsSet()) return;
                flag->Set();
                flag->Fire();
              },
              "abort"),
          napi_enumerable),
      Napi::PropertyDescriptor::Accessor(
          env, handle, "aborted",
          [flag](const Napi::CallbackInfo& i) -> Napi::Value { return Napi::Boolean::New(i.Env(), flag->IsSet()); },
          napi_enumerable),
  });
  return handle;
}

AbortFlagPtr AbortFlagFromValue(const Napi::Value& value, const char* field) {
  if (value.IsObject()) {
    Napi::Value token = value.As<Napi::Object>().Get(kFlagKey);
    if (token.IsExternal() && token.As<Napi::External<AbortFlagPtr>>().CheckTypeTag(&kAbortTag)) {
      return *token.As<Napi::External<AbortFlagPtr>>().Data();
    }
  }
  throw Napi::TypeError::New(value.Env(), std::string(field) + " must be a handle returned by createAbortHandle()");
}

Napi::Error MakeAbortError(Napi::Env env) {
  Napi::Error error = Napi::Error::New(env, "The operation was aborted");
  error.Set("name", Napi::String::New(env, "AbortError"));
  error.Set("code", Napi::String::New(env, "ABORT_ERR"));
  return error;
}

}  // namespace scire

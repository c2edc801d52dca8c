// Extension hook for top-level addon exports: a module that adds functions to scire.node
// registers an init function from a namespace-scope static initializer, e.g.
//
//   static void InitLincomb(Napi::Env env, Napi::Object exports) {
//     exports.Set("lincomb", Napi::Function::New(env, Lincomb, "lincomb"));
//   }
//   static const bool kRegistered = scire::RegisterExports(&InitLincomb);
//
// addon.cc calls every registered init once per environment, after its own.
#pragma once

#include <napi.h>

namespace scire {

using ExportsInit = void (*)(Napi::Env env, Napi::Object exports);
bool RegisterExports(ExportsInit init);
void InitRegisteredExports(Napi::Env env, Napi::Object exports);

}  // namespace scire

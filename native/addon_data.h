// Per-environment data of the addon (one per Node.js main thread / worker thread).
// Add fields here when another class needs its constructor kept.
#pragma once

#include <napi.h>

namespace scire {

struct AddonData {
  Napi::FunctionReference modelConstructor;
};

// Creates the environment's AddonData on first use.
AddonData& GetAddonData(Napi::Env env);

}  // namespace scire

// Per-environment data of the addon (one per Node.js main thread / worker thread).
// Add fields here when another class needs its constructor kept.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

namespace scire {

class ModelRuntime;

/** The loaded models of an environment that may still have work (model_runtime.h), torn
 *  down by the environment's cleanup hook. JS thread only. */
struct RuntimeRegistry {
  std::vector<std::shared_ptr<ModelRuntime>> runtimes;
  bool hooked = false;
};

struct AddonData {
  Napi::FunctionReference modelConstructor;
  RuntimeRegistry runtimes;
  bool testingAddon = false;  // buildInfo().testing: this is scire_testing.node
};

// Creates the environment's AddonData on first use.
AddonData& GetAddonData(Napi::Env env);

}  // namespace scire

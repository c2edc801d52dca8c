#include "exports.h"

#include <vector>

namespace scire {

namespace {
std::vector<ExportsInit>& Registry() {
  static std::vector<ExportsInit> registry;
  return registry;
}
}  // namespace

bool RegisterExports(ExportsInit init) {
  Registry().push_back(init);
  return true;
}

void InitRegisteredExports(Napi::Env env, Napi::Object exports) {
  for (ExportsInit init : Registry()) init(env, exports);
}

}  // namespace scire

#include "addon_data.h"

#include "model_runtime.h"  // complete type for ~AddonData

namespace scire {

AddonData& GetAddonData(Napi::Env env) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data == nullptr) {
    data = new AddonData();
    env.SetInstanceData<AddonData>(data);  // deleted by node-addon-api when the env goes away
  }
  return *data;
}

}  // namespace scire

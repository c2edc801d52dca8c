# node-gyp build of scire.node: CPU only, for machines without CMake or CUDA
# (`npm run build:gyp`). Same C++ sources as CMakeLists.txt (every native/*.cc and
# native/kernels/*.cc, listed by the node command below); no .cu files, and not the
# test/benchmark entries of native/testing/ (those are only in CMake's scire_testing.node).
# LibTorch: Debian's libtorch-dev (headers in /usr/include, libraries on the default
# linker path). Another LibTorch: set LIBTORCH=<folder with include/ and lib/>.
{
  "variables": {
    "libtorch%": "<!(node -p \"process.env.LIBTORCH || ''\")"
  },
  "targets": [
    {
      "target_name": "scire",
      "sources": [
        "<!@(node -e \"const fs=require('fs');for(const d of ['native','native/kernels'])for(const f of fs.readdirSync(d).sort())if(f.endsWith('.cc'))console.log(d+'/'+f)\")"
      ],
      "include_dirs": [
        "native",
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "SCIRE_VERSION=<!(node -p \"require('./package.json').version\")"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-fvisibility=hidden", "-Wno-unused-parameter"],
      "conditions": [
        ["libtorch==''", {
          "include_dirs": ["/usr/include", "/usr/include/torch/csrc/api/include"],
          "defines": ["_GLIBCXX_USE_CXX11_ABI=1"]
        }, {
          "include_dirs": ["<(libtorch)/include", "<(libtorch)/include/torch/csrc/api/include"],
          "ldflags": ["-L<(libtorch)/lib", "-Wl,-rpath,<(libtorch)/lib"]
        }]
      ],
      # --no-as-needed: Debian's gcc would otherwise drop the "unused" torch libraries.
      "libraries": ["-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10", "-Wl,--as-needed"],
      # Never unmapped (Node dlcloses a worker's addons when the worker ends): a model thread
      # detached with a forward still running keeps executing code of this library.
      "ldflags": ["-Wl,-z,nodelete"]
    }
  ]
}

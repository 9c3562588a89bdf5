#include "core/build_info.h"

#include <omp.h>

#include <cblas.h>
#include <dnnl.h>
#include <fmt/format.h>

namespace basin {
namespace cuda_backend {
// Implemented by the CUDA backend (runtime version and device names) or its stub (empty).
void add_build_info(std::map<std::string, std::string>& info);
}  // namespace cuda_backend

std::string version() { return BASIN_VERSION; }

std::map<std::string, std::string> build_info() {
  std::map<std::string, std::string> info;
  info["basin"] = version();
  info["compiler"] = fmt::format("g++ {}", __VERSION__);
  const dnnl_version_t* dnnl = dnnl_version();
  info["onednn"] = fmt::format("{}.{}.{}", dnnl->major, dnnl->minor, dnnl->patch);
  info["openblas"] = openblas_get_config();
  info["omp_threads"] = std::to_string(omp_get_max_threads());
  std::string features;
  auto add = [&](bool present, const char* name) {
    if (!present) return;
    if (!features.empty()) features += ' ';
    features += name;
  };
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  info["cpu_features"] = features;
  cuda_backend::add_build_info(info);
  return info;
}

}  // namespace basin

// What a run was computed with: library versions, compiler, thread count, CPU features and GPUs.
// Recorded in every checkpoint's trainer_state.json, so a result can be traced to its machine.
#pragma once

#include <map>
#include <string>

namespace basin {

/// The version of basin ("0.1.0").
std::string version();

/// Name → value: "basin", "compiler", "onednn", "openblas", "omp_threads", "cpu_features",
/// "cuda_runtime" and "cuda_devices" (absent without CUDA).
std::map<std::string, std::string> build_info();

}  // namespace basin

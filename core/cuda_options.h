// Process-wide switches of the CUDA backend that trade accuracy for speed (all off by default).
#pragma once

namespace basin {

/// Lets float32 matmuls on CUDA devices use TF32 tensor cores: inputs rounded to a 10-bit
/// mantissa, about 1e-3 relative error, several times faster. Off by default so that float32
/// results match the CPU to float32 precision. Takes effect for matmuls started afterwards;
/// safe to call from any thread. Without CUDA it is recorded and has no effect.
void set_cuda_allow_tf32(bool allow);
/// Whether float32 CUDA matmuls may use TF32 (see set_cuda_allow_tf32).
bool cuda_allow_tf32();

}  // namespace basin

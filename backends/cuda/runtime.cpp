// The CUDA device runtime: availability, raw device memory for the caching allocator, and copies
// between host and device.
#include <cuda_runtime.h>

#include <map>
#include <string>

#include "backends/cuda/common.cuh"
#include "backends/cuda/cuda_check.h"
#include "core/allocator.h"
#include "core/error.h"

namespace basin {

namespace cuda {
void raise_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  fail("[cuda] {} failed: {} ({}) at {}:{}", call, cudaGetErrorString(err), cudaGetErrorName(err),
       file, line);
}

void raise_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  fail("[cublas] {} failed: {} ({}) at {}:{}", call, cublasGetStatusString(status),
       static_cast<int>(status), file, line);
}
}  // namespace cuda

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error and report none
    return 0;
  }
  return n;
}

bool cuda_is_available() { return cuda_device_count() > 0; }

namespace cuda_backend {

void add_build_info(std::map<std::string, std::string>& info) {
  int runtime = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
    info["cuda_runtime"] =
        std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10);
  }
  std::string devices;
  for (int d = 0; d < cuda_device_count(); ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    devices += (devices.empty() ? "" : "; ") + std::string(prop.name);
  }
  cudaGetLastError();
  info["cuda_devices"] = devices.empty() ? "none" : devices;
}

void* raw_malloc(size_t nbytes, int device) {
  const int n = cuda_device_count();
  if (device < 0 || device >= n) {
    fail("[cuda:{}] no such CUDA device ({} available{})", device, n,
         n == 0 ? ": no GPU or no driver on this machine" : "");
  }
  BASIN_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, nbytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return nullptr;  // the caching allocator frees its cache and retries once
  }
  BASIN_CUDA_CHECK(err);
  return p;
}

void raw_free(void* ptr, int device) {
  BASIN_CUDA_CHECK(cudaSetDevice(device));
  BASIN_CUDA_CHECK(cudaFree(ptr));
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (dst_device.is_cuda()) {
    BASIN_CUDA_CHECK(cudaSetDevice(dst_device.index));
  } else if (src_device.is_cuda()) {
    BASIN_CUDA_CHECK(cudaSetDevice(src_device.index));
  }
  if (src_device.is_cpu() && dst_device.is_cuda()) {
    // Host to device, queued on basin's stream: from pageable memory (basin's host buffers) the
    // runtime stages the bytes before it returns, so the host buffer may be reused at once, and
    // the host does not wait for the work already queued (cudaMemcpy would).
    BASIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, cuda::stream()));
    return;
  }
  // Synchronous: the host reads a result as soon as this returns.
  BASIN_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDefault));
}

void synchronize(int device) {
  BASIN_CUDA_CHECK(cudaSetDevice(device));
  BASIN_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace cuda_backend
}  // namespace basin

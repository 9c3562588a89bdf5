// Buffers behind tensors, and the caching allocator that hands them out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"
#include "core/dtype.h"

namespace basin {

/// A block of device memory shared by a tensor and its views; returned to its allocator's cache
/// when the last user lets go.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;    // bytes requested
  size_t capacity = 0;  // bytes of the block (its size class)
  Device device;

  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
};

/// Allocates `nbytes` on `device` (64-byte aligned on the CPU), reusing a cached block of the same
/// size class when there is one.
std::shared_ptr<Storage> allocate(size_t nbytes, Device device);

/// Counters of one device's allocator.
struct AllocatorStats {
  size_t bytes_in_use = 0;  // held by live storages
  size_t bytes_cached = 0;  // freed blocks kept for reuse
  size_t peak_bytes_in_use = 0;
  size_t n_allocs = 0;      // requests
  size_t n_cache_hits = 0;  // requests served from the cache
};

AllocatorStats allocator_stats(Device device);
/// Returns every cached block of `device` to the system.
void empty_cache(Device device);

/// Copies `nbytes` between buffers on any pair of devices.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

// Implemented by the CUDA backend (or its stub in a build without CUDA).
namespace cuda_backend {
void* raw_malloc(size_t nbytes, int device);
void raw_free(void* ptr, int device);
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
/// Waits for all work queued on the device.
void synchronize(int device);
/// Sets n elements of `dtype` at dst on the device to `value` (converted as static_cast does),
/// queued on basin's stream.
void fill(void* dst, Dtype dtype, double value, int64_t n, int device);
}  // namespace cuda_backend

}  // namespace basin

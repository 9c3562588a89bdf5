// Caching allocator: freed blocks are kept per size class and reused, so a training step that
// allocates the same shapes every time does not go back to the system.
#include "core/allocator.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "core/error.h"

namespace basin {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMaxCachedBytes = size_t{4} << 30;

// Size classes: multiples of 64 bytes up to 4 KiB, then four classes per power of two, so no
// block wastes more than a fifth of itself.
size_t size_class(size_t nbytes) {
  if (nbytes <= 4096)
    return nbytes == 0 ? kAlignment : (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  size_t pow2 = 4096;
  while (pow2 * 2 < nbytes) pow2 *= 2;
  const size_t step = pow2 / 4;
  return (nbytes + step - 1) / step * step;
}

class CachingAllocator {
 public:
  explicit CachingAllocator(Device device) : device_(device) {}
  ~CachingAllocator() { release_all(); }

  void* take(size_t nbytes, size_t* capacity) {
    const size_t cap = size_class(nbytes);
    *capacity = cap;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.n_allocs;
      auto it = free_.find(cap);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.bytes_cached -= cap;
        ++stats_.n_cache_hits;
        note_in_use(cap);
        return p;
      }
    }
    void* p = raw_alloc(cap);
    if (p == nullptr) {
      release_all();  // out of memory: give the cache back and try once more
      p = raw_alloc(cap);
      if (p == nullptr) {
        fail("[allocate] out of memory on {}: cannot allocate {} bytes", device_.str(), nbytes);
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    note_in_use(cap);
    return p;
  }

  void give_back(void* p, size_t cap) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.bytes_in_use -= cap;
    if (stats_.bytes_cached + cap > kMaxCachedBytes) {
      raw_free(p);
      return;
    }
    free_[cap].push_back(p);
    stats_.bytes_cached += cap;
  }

  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [cap, blocks] : free_) {
      for (void* p : blocks) raw_free(p);
    }
    free_.clear();
    stats_.bytes_cached = 0;
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  void note_in_use(size_t cap) {
    stats_.bytes_in_use += cap;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use)
      stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }
  void* raw_alloc(size_t cap) {
    if (device_.is_cpu()) return std::aligned_alloc(kAlignment, cap);
    return cuda_backend::raw_malloc(cap, device_.index);
  }
  void raw_free(void* p) {
    if (device_.is_cpu()) {
      std::free(p);
    } else {
      cuda_backend::raw_free(p, device_.index);
    }
  }

  Device device_;
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

CachingAllocator& allocator_for(Device device) {
  // Leaked on purpose: storages may be freed by static destructors after main returns.
  static CachingAllocator* cpu = new CachingAllocator(Device::cpu());
  static std::mutex mutex;
  static auto* cuda = new std::map<int, CachingAllocator*>();
  if (device.is_cpu()) return *cpu;
  std::lock_guard<std::mutex> lock(mutex);
  auto& a = (*cuda)[device.index];
  if (a == nullptr) a = new CachingAllocator(device);
  return *a;
}

}  // namespace

Storage::~Storage() {
  if (data != nullptr) allocator_for(device).give_back(data, capacity);
}

std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
  auto s = std::make_shared<Storage>();
  s->device = device;
  s->nbytes = nbytes;
  s->data = allocator_for(device).take(nbytes, &s->capacity);
  return s;
}

AllocatorStats allocator_stats(Device device) { return allocator_for(device).stats(); }

void empty_cache(Device device) { allocator_for(device).release_all(); }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  cuda_backend::copy(dst, dst_device, src, src_device, nbytes);
}

}  // namespace basin

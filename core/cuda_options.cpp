// Storage of the CUDA backend's switches; compiled in every build so the API is always there.
#include "core/cuda_options.h"

#include <atomic>

namespace basin {
namespace {
// Read by every matmul launch and written by the user from any thread.
std::atomic<bool> g_allow_tf32{false};
}  // namespace

void set_cuda_allow_tf32(bool allow) { g_allow_tf32.store(allow, std::memory_order_relaxed); }
bool cuda_allow_tf32() { return g_allow_tf32.load(std::memory_order_relaxed); }

}  // namespace basin

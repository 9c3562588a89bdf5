// Compiled when basin is built without CUDA: every entry point of the CUDA backend raises a
// clear error, and CUDA reports no devices. (Ops without a CUDA kernel fail in Op::eval_cuda.)
#include <map>
#include <string>

#include "core/allocator.h"
#include "core/error.h"
#include "core/prims/optim.h"

namespace basin {

bool cuda_is_available() { return false; }
int cuda_device_count() { return 0; }

namespace cuda_backend {

void* raw_malloc(size_t, int device) {
  fail("[cuda:{}] basin was built without CUDA; rebuild with nvcc available to use a GPU", device);
}
void raw_free(void*, int) {}
void add_build_info(std::map<std::string, std::string>&) {}
void copy(void*, Device dst, const void*, Device src, size_t) {
  fail("[to] cannot copy from {} to {}: basin was built without CUDA", src.str(), dst.str());
}
void synchronize(int) {}
void fill(void*, Dtype, double, int64_t, int device) {
  fail("[cuda:{}] basin was built without CUDA; rebuild with nvcc available to use a GPU", device);
}
void adam_update(const Tensor& param, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                 const prims::AdamStep&) {
  fail("[adam_update] a parameter on {}: basin was built without CUDA", param.device().str());
}

}  // namespace cuda_backend
}  // namespace basin

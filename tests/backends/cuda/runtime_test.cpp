// The CUDA device runtime: host <-> device copies through the caching allocator. Skips where no
// GPU or driver is present.
#include "tests/test_util.h"

namespace basin {
namespace {

#define BASIN_REQUIRE_CUDA() \
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device or driver on this machine"

TEST(CudaRuntime, RoundTripThroughTheDevice) {
  BASIN_REQUIRE_CUDA();
  const Tensor x = testing::make({3, 5}, 1);
  const Tensor d = x.to(Device::cuda(0));
  EXPECT_TRUE(d.device().is_cuda());
  EXPECT_EQ(d.shape(), x.shape());
  EXPECT_TRUE(testing::all_close(d.to(Device::cpu()), x, 0, 0));
  // A non-contiguous host view arrives in row-major order.
  const Tensor t = transpose(x);
  EXPECT_TRUE(testing::all_close(t.to(Device::cuda(0)).to(Device::cpu()), t.contiguous(), 0, 0));
}

TEST(CudaRuntime, AllocatorReusesFreedBlocks) {
  BASIN_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  { const Tensor a = zeros({1 << 20}, Dtype::f32, gpu); }
  const AllocatorStats before = allocator_stats(gpu);
  { const Tensor b = zeros({1 << 20}, Dtype::f32, gpu); }
  const AllocatorStats after = allocator_stats(gpu);
  EXPECT_EQ(after.n_cache_hits, before.n_cache_hits + 1);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  empty_cache(gpu);
  EXPECT_EQ(allocator_stats(gpu).bytes_cached, 0u);
}

TEST(CudaRuntime, GradientFlowsAcrossDevices) {
  BASIN_REQUIRE_CUDA();
  const Tensor x = testing::make({4}, 2);
  const Tensor g =
      grad([](const Tensor& v) { return sum(v.to(Device::cuda(0)).to(Device::cpu()) * v); })(x);
  EXPECT_TRUE(testing::all_close(g, 2.0 * x));
}

TEST(CudaRuntime, BadDeviceIndexIsAClearError) {
  BASIN_REQUIRE_CUDA();
  EXPECT_TRUE(testing::throws_error([] { zeros({2}).to(Device::cuda(99)); }, {"cuda:99"}));
}

}  // namespace
}  // namespace basin

namespace basin {
namespace {

TEST(CudaRuntime, EveryOpRunsOnTheDevice) {
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device or driver on this machine";
  // Ops without a kernel run on the host and hand their result back to the device.
  const Tensor x = testing::make({4, 3}, 3);
  const Tensor d = transpose(x.to(Device::cuda(0)));
  const Tensor y = softmax(exp(d) * 2.0, -1);
  EXPECT_TRUE(y.device().is_cuda());
  EXPECT_TRUE(testing::all_close(y.to(Device::cpu()), softmax(exp(transpose(x)) * 2.0, -1)));
}

}  // namespace
}  // namespace basin

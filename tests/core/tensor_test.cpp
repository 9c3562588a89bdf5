// Tensor basics: creation, views, printing, dtypes, devices, random numbers.
#include <omp.h>

#include <sstream>

#include "tests/test_util.h"

namespace basin {
namespace {

TEST(Tensor, CreationAndAccess) {
  const Tensor z = zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.dtype(), Dtype::f32);
  EXPECT_EQ(z.numel(), 6);
  EXPECT_TRUE(z.is_contiguous());
  EXPECT_EQ(ones({2}, Dtype::i64).to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(full({2}, 2.5, Dtype::f64).to_vector<double>(), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(arange(4).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(arange(1.0, 2.0, 0.25, Dtype::f64).to_vector<double>(),
            (std::vector<double>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(linspace(0, 1, 5, Dtype::f64).to_vector<double>(),
            (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  EXPECT_EQ(eye(2, 3).to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(scalar(3.0).item<float>(), 3.f);
  EXPECT_EQ(tensor({{1, 2}, {3, 4}}).shape(), (Shape{2, 2}));
  EXPECT_EQ(zeros({0, 3}).numel(), 0);
}

TEST(Tensor, ViewsShareStorage) {
  const Tensor x = from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  const Tensor t = transpose(x);
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.storage(), x.storage());
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  const Tensor c = t.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.storage(), x.storage());
  const Tensor r = reshape(x, {3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.storage(), x.storage());
  const Tensor b = broadcast_to(tensor({1.f, 2.f}), {3, 2});
  EXPECT_EQ(b.strides(), (Shape{0, 1}));
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1, 2, 1, 2, 1, 2}));
  EXPECT_EQ(squeeze(zeros({1, 3, 1})).shape(), (Shape{3}));
  EXPECT_EQ(unsqueeze(zeros({3}), -1).shape(), (Shape{3, 1}));
  EXPECT_EQ(flatten(zeros({2, 3, 4}), 1).shape(), (Shape{2, 12}));
}

TEST(Tensor, AssignWritesInPlace) {
  const Tensor x = zeros({2, 3});
  const Tensor view = transpose(x);
  view.assign(tensor({1.f, 2.f}));  // broadcast along the rows of the transposed view
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{1, 1, 1, 2, 2, 2}));
  EXPECT_TRUE(testing::throws_error([&] { x.assign(zeros({4})); }, {"[assign]"}));
}

TEST(Tensor, AsTypeConverts) {
  const Tensor x = tensor({1.7, -2.2});
  EXPECT_EQ(x.astype(Dtype::i32).to_vector<int>(), (std::vector<int>{1, -2}));
  EXPECT_EQ(x.astype(Dtype::boolean).to_vector<int>(), (std::vector<int>{1, 1}));
  EXPECT_EQ(x.astype(Dtype::f32).dtype(), Dtype::f32);
}

TEST(Tensor, Printing) {
  std::ostringstream os;
  os << tensor({{1.5f, 2.f}, {3.f, 4.f}});
  EXPECT_NE(os.str().find("shape=(2, 2)"), std::string::npos);
  EXPECT_NE(os.str().find("[[1.5,   2]"), std::string::npos) << os.str();
  std::ostringstream big;
  big << zeros({2000});
  EXPECT_NE(big.str().find("..."), std::string::npos);
  std::ostringstream undefined;
  undefined << Tensor();
  EXPECT_EQ(undefined.str(), "Tensor(undefined)");
}

TEST(Tensor, Errors) {
  EXPECT_TRUE(testing::throws_error([] { zeros({2, 3}).item<float>(); }, {"[item]", "(2, 3)"}));
  EXPECT_TRUE(testing::throws_error([] { zeros({2}).data<double>(); }, {"float32", "float64"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        reshape(zeros({2, 3}), {4, -1});
      },
      {"[reshape]", "(2, 3)"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        transpose(zeros({2, 3}), 0, 2);
      },
      {"[transpose]", "axis 2"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        broadcast_to(zeros({2, 3}), {3, 3});
      },
      {"[broadcast_to]"}));
  EXPECT_TRUE(testing::throws_error([] { Device::parse("gpu"); }, {"[device]", "gpu"}));
  EXPECT_TRUE(testing::throws_error([] { zeros({-1}); }, {"negative"}));
}

TEST(Random, PhiloxMatchesTheReferenceVector) {
  // cuRAND's PHILOX4_32_10 with seed 42 starts with Philox4x32-10(counter 0, key 42).
  const auto r = philox4x32(42, 0);
  EXPECT_EQ(r[0], 0x9ceaf053u);
  EXPECT_EQ(r[1], 0x77f5493bu);
  EXPECT_EQ(r[2], 0x12bf50adu);
  EXPECT_EQ(r[3], 0x5742b3d7u);
}

TEST(Random, SameSeedSameNumbersOnAnyThreadCount) {
  Generator a(7), b(7);
  const auto one = rand({100000}, Dtype::f32, Device::cpu(), &a).to_vector<float>();
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto two = rand({100000}, Dtype::f32, Device::cpu(), &b).to_vector<float>();
  omp_set_num_threads(threads);
  EXPECT_EQ(one, two);
  EXPECT_EQ(a.offset(), 100000u);
}

TEST(Random, Distributions) {
  Generator g(1);
  const Tensor n = randn({200000}, Dtype::f64, Device::cpu(), &g);
  EXPECT_NEAR(mean(n).item<double>(), 0.0, 0.01);
  EXPECT_NEAR(mean(n * n).item<double>(), 1.0, 0.02);
  const Tensor u = rand({200000}, Dtype::f64, Device::cpu(), &g);
  EXPECT_NEAR(mean(u).item<double>(), 0.5, 0.01);
  const Tensor i = randint(3, 7, {10000}, Dtype::i64, Device::cpu(), &g);
  const auto iv = i.to_vector<int64_t>();
  EXPECT_EQ(*std::min_element(iv.begin(), iv.end()), 3);
  EXPECT_EQ(*std::max_element(iv.begin(), iv.end()), 6);
  const Tensor m = bernoulli({100000}, 0.3, Device::cpu(), &g);
  EXPECT_EQ(m.dtype(), Dtype::boolean);
  EXPECT_NEAR(mean(m.astype(Dtype::f64)).item<double>(), 0.3, 0.01);
  auto perm = randperm(50, Device::cpu(), &g).to_vector<int64_t>();
  std::sort(perm.begin(), perm.end());
  for (int64_t k = 0; k < 50; ++k) EXPECT_EQ(perm[k], k);
}

TEST(Random, DefaultGeneratorIsReseedable) {
  manual_seed(123);
  const auto a = randn({5}).to_vector<float>();
  manual_seed(123);
  const auto b = randn({5}).to_vector<float>();
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace basin

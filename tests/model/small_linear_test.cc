// The few-row linear kernel against two independent references: the exact product in float64, with the
// standard forward error bound of a K-term float32 dot product (|error| ≤ K·u·Σ|x_k·w_k|, u = 2⁻²⁴), and
// libtorch's own at::linear in float32, which obeys the same bound (so the two may differ by twice it).
// bf16 / fp16 weights are widened exactly, so the same bound applies to their float64 product.
#include "mgcheck/model/small_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

using namespace mgcheck::model;

namespace {

struct Case {
  int64_t M, K, N;
};

WeightType type_of(torch::Dtype d) {
  if (d == torch::kBFloat16) return WeightType::bf16;
  if (d == torch::kFloat16) return WeightType::f16;
  return WeightType::f32;
}

void check(const Case& c, torch::Dtype wdtype, bool with_bias, int threads) {
  SCOPED_TRACE("M=" + std::to_string(c.M) + " K=" + std::to_string(c.K) + " N=" + std::to_string(c.N) +
               " dtype=" + std::string(c10::toString(wdtype)) + " bias=" + std::to_string(with_bias) +
               " threads=" + std::to_string(threads));
  set_small_linear_threads(threads);
  auto x = torch::randn({c.M, c.K});
  auto w = torch::randn({c.N, c.K}).to(wdtype);
  auto b = with_bias ? torch::randn({c.N}) : torch::Tensor();
  auto y = torch::empty({c.M, c.N});
  small_linear(x.data_ptr<float>(), c.M, c.K, w.data_ptr(), type_of(wdtype), c.N,
               with_bias ? b.data_ptr<float>() : nullptr, y.data_ptr<float>());

  auto x64 = x.to(torch::kFloat64), w64 = w.to(torch::kFloat64);
  auto exact = torch::matmul(x64, w64.t());
  auto magnitude = torch::matmul(x64.abs(), w64.abs().t());
  if (with_bias) {
    exact = exact + b.to(torch::kFloat64);
    magnitude = magnitude + b.to(torch::kFloat64).abs();
  }
  const double u = std::ldexp(1.0, -24);
  auto bound = magnitude * (static_cast<double>(c.K + 1) * u) + 1e-30;
  auto err = (y.to(torch::kFloat64) - exact).abs();
  EXPECT_TRUE((err <= bound).all().item<bool>()) << "max error / bound " << (err / bound).max().item<double>();

  auto ref = at::linear(x, w.to(torch::kFloat32), b);
  auto diff = (y.to(torch::kFloat64) - ref.to(torch::kFloat64)).abs();
  EXPECT_TRUE((diff <= bound * 2).all().item<bool>())
      << "vs at::linear: max diff / bound " << (diff / bound).max().item<double>();
}

}  // namespace

TEST(SmallLinear, MatchesExactProductAndAtLinear) {
  if (!small_linear_supported()) GTEST_SKIP() << "no AVX-512 on this CPU: the model uses at::linear";
  torch::manual_seed(11);
  const Case cases[] = {{1, 1, 1},   {2, 15, 3},  {2, 16, 4},  {2, 17, 5},   {3, 64, 7},    {4, 100, 9},
                        {5, 33, 13}, {6, 48, 2},  {7, 129, 6}, {8, 1000, 11}, {2, 1024, 65}, {8, 31, 64}};
  for (const auto& c : cases)
    for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16})
      for (bool bias : {false, true}) check(c, dt, bias, 1);
}

TEST(SmallLinear, ThreadedSplitGivesTheSameAnswer) {
  if (!small_linear_supported()) GTEST_SKIP() << "no AVX-512 on this CPU";
  torch::manual_seed(12);
  // Large enough (≥ 256 KiB of weights) for the pool to split W's rows; N not a multiple of 4 or of the
  // thread count.
  for (int threads : {1, 2, 3})
    for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
      check({2, 1024, 1027}, dt, true, threads);
      check({1, 4096, 130}, dt, false, threads);
      check({8, 512, 515}, dt, true, threads);
      check({2, 16384, 5}, dt, true, threads);  // fewer row blocks (2) than threads (3): an idle worker
    }
  // Bit-identical across thread counts: each output element is computed the same way by one thread.
  auto x = torch::randn({2, 1024});
  auto w = torch::randn({2049, 1024});
  auto run = [&](int threads) {
    set_small_linear_threads(threads);
    auto y = torch::empty({2, 2049});
    small_linear(x.data_ptr<float>(), 2, 1024, w.data_ptr(), WeightType::f32, 2049, nullptr, y.data_ptr<float>());
    return y;
  };
  EXPECT_TRUE(torch::equal(run(1), run(2)));
  set_small_linear_threads(1);
}

TEST(SmallLinear, SpecialValuesPropagate) {
  if (!small_linear_supported()) GTEST_SKIP() << "no AVX-512 on this CPU";
  set_small_linear_threads(1);
  auto x = torch::ones({2, 20});
  auto w = torch::ones({3, 20});
  w.index_put_({1, 19}, std::numeric_limits<float>::quiet_NaN());  // in the masked tail
  w.index_put_({2, 0}, std::numeric_limits<float>::infinity());
  auto y = torch::empty({2, 3});
  small_linear(x.data_ptr<float>(), 2, 20, w.data_ptr(), WeightType::f32, 3, nullptr, y.data_ptr<float>());
  auto ref = at::linear(x, w);
  EXPECT_TRUE(torch::equal(y.isnan(), ref.isnan()));
  EXPECT_TRUE(torch::equal(y.isinf(), ref.isinf()));
  EXPECT_FLOAT_EQ(y[0][0].item<float>(), 20.0f);
}

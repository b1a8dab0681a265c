// y = x·Wᵀ + b for a few rows of x on the CPU: the decode step's linear layers (batch 2 for CFG, a few more
// for stereo or batch > 1). libtorch 1.13 sends a 2-row fp32 `linear` to OpenBLAS sgemm, which packs
// (copies) W on every call and streams weights at ~8 GB/s on the development machine, and bf16 to oneDNN
// (~9 GB/s); the step is bound by reading the weights once, which this kernel does for all rows at once
// with AVX-512 (fp32, bf16 widened exactly, fp16 via vcvtph2ps), split by rows of W across a small
// persistent thread pool. docs/performance.md has the measurements. No libtorch in this header.
#pragma once
#include <cstdint>

namespace mgcheck::model {

enum class WeightType { f32, bf16, f16 };

inline constexpr int64_t kSmallLinearMaxRows = 8;

// True when this CPU has the AVX-512 kernel (F + BW + VL); callers use at::linear otherwise.
bool small_linear_supported() noexcept;

// y[m·N + n] = Σ_k x[m·K + k] · W[n·K + k] (+ bias[n]) for m < M ≤ kSmallLinearMaxRows, accumulated in
// float32 (weights of other types are widened exactly). x, y and bias ([N] or nullptr) are float32 and
// contiguous; W is row-major [N, K] of `type`. Precondition: small_linear_supported().
void small_linear(const float* x, int64_t M, int64_t K, const void* w, WeightType type, int64_t N,
                  const float* bias, float* y) noexcept;

// Threads the kernel splits W's rows across (1 = the calling thread only). model::configure_threads sets
// it to the BLAS thread count, since the kernel takes over the work OpenBLAS did in the step.
void set_small_linear_threads(int n);
int small_linear_threads() noexcept;

}  // namespace mgcheck::model

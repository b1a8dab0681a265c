// The few-row linear kernel (small_linear.h). No libtorch here: plain loops over raw pointers, AVX-512 code
// compiled with target attributes and chosen at run time, so the build still runs on any x86-64.
#include "mgcheck/model/small_linear.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MGCHECK_SMALL_LINEAR_AVX512 1
#endif

namespace mgcheck::model {
namespace {

// ---- a persistent pool: the step calls the kernel ~170 times (~50-100 µs each), too often to start
// threads each time, and too briefly to pay a futex wake-up per call: workers spin for a short while on
// the generation counter before they block.
class Pool {
 public:
  explicit Pool(int threads) : size_(std::max(1, threads)) {
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { work(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const noexcept { return size_; }

  // Runs job(0..parts-1), part 0 on the caller; returns when all are done. parts ≤ size().
  void run(int parts, const std::function<void(int)>& job) {
    if (parts <= 1) {
      job(0);
      return;
    }
    // Every worker acknowledges every generation (those past `parts` without work), so none can lag into
    // the next one while job_ and parts_ change.
    job_ = &job;
    parts_ = parts;
    remaining_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(m_);
      generation_.fetch_add(1, std::memory_order_release);  // publishes job_ and parts_
    }
    wake_.notify_all();
    job(0);
    for (int spin = 0; remaining_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < kSpins) {
        pause();
        continue;
      }
      std::unique_lock<std::mutex> lock(m_);
      done_.wait(lock, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
    }
    job_ = nullptr;
  }

 private:
  static constexpr int kSpins = 20000;  // ~50-100 µs
  static void pause() noexcept {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }

  void work(int index) {
    uint64_t seen = 0;
    for (;;) {
      for (int spin = 0; generation_.load(std::memory_order_acquire) == seen && !stop_.load(); ++spin) {
        if (spin < kSpins) {
          pause();
          continue;
        }
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
      }
      if (stop_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      if (index < parts_) (*job_)(index);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(m_);
        done_.notify_one();
      }
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int parts_ = 0;
  std::atomic<int> remaining_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

std::mutex g_pool_mutex;  // one caller at a time; guards g_pool
std::unique_ptr<Pool> g_pool;
std::atomic<int> g_threads{1};

#ifdef MGCHECK_SMALL_LINEAR_AVX512
#define MGCHECK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

template <WeightType T>
MGCHECK_AVX512 inline __m512 load_w(const void* w, int64_t i, __mmask16 mask) {
  if constexpr (T == WeightType::f32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(w) + i);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(w) + i);
    if constexpr (T == WeightType::bf16)
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));  // exact widening
    else
      return _mm512_cvtph_ps(h);
  }
}

// Rows [n0, n1) of W against the M rows of x, R rows of W at a time (M·R accumulators in registers).
template <WeightType T, int M, int R>
MGCHECK_AVX512 void rows_avx512(const float* x, int64_t K, const void* w, int64_t N, int64_t n0, int64_t n1,
                                const float* bias, float* y) {
  int64_t n = n0;
  for (; n + R <= n1; n += R) {
    __m512 acc[M][R];
    for (int m = 0; m < M; ++m)
      for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      __m512 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = load_w<T>(w, (n + r) * K + k, 0xffff);
      for (int m = 0; m < M; ++m) {
        const __m512 xv = _mm512_loadu_ps(x + m * K + k);
        for (int r = 0; r < R; ++r) acc[m][r] = _mm512_fmadd_ps(wv[r], xv, acc[m][r]);
      }
    }
    if (k < K) {
      const __mmask16 mask = static_cast<__mmask16>((1u << (K - k)) - 1u);
      __m512 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = load_w<T>(w, (n + r) * K + k, mask);
      for (int m = 0; m < M; ++m) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, x + m * K + k);
        for (int r = 0; r < R; ++r) acc[m][r] = _mm512_fmadd_ps(wv[r], xv, acc[m][r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      const float b = bias ? bias[n + r] : 0.0f;
      for (int m = 0; m < M; ++m) y[m * N + n + r] = _mm512_reduce_add_ps(acc[m][r]) + b;
    }
  }
  if constexpr (R > 1) {
    if (n < n1) rows_avx512<T, M, 1>(x, K, w, N, n, n1, bias, y);
  }
}

template <WeightType T, int M>
void rows_for_m(const float* x, int64_t K, const void* w, int64_t N, int64_t n0, int64_t n1, const float* bias, float* y) {
  constexpr int R = M <= 2 ? 4 : (M <= 4 ? 2 : 1);  // ≤ 8 accumulators + R weight and M x registers
  rows_avx512<T, M, R>(x, K, w, N, n0, n1, bias, y);
}

template <WeightType T>
void rows_typed(const float* x, int64_t M, int64_t K, const void* w, int64_t N, int64_t n0, int64_t n1,
                const float* bias, float* y) {
  switch (M) {
    case 1: rows_for_m<T, 1>(x, K, w, N, n0, n1, bias, y); break;
    case 2: rows_for_m<T, 2>(x, K, w, N, n0, n1, bias, y); break;
    case 3: rows_for_m<T, 3>(x, K, w, N, n0, n1, bias, y); break;
    case 4: rows_for_m<T, 4>(x, K, w, N, n0, n1, bias, y); break;
    case 5: rows_for_m<T, 5>(x, K, w, N, n0, n1, bias, y); break;
    case 6: rows_for_m<T, 6>(x, K, w, N, n0, n1, bias, y); break;
    case 7: rows_for_m<T, 7>(x, K, w, N, n0, n1, bias, y); break;
    default: rows_for_m<T, 8>(x, K, w, N, n0, n1, bias, y); break;
  }
}

void rows(const float* x, int64_t M, int64_t K, const void* w, WeightType t, int64_t N, int64_t n0, int64_t n1,
          const float* bias, float* y) {
  switch (t) {
    case WeightType::f32: rows_typed<WeightType::f32>(x, M, K, w, N, n0, n1, bias, y); break;
    case WeightType::bf16: rows_typed<WeightType::bf16>(x, M, K, w, N, n0, n1, bias, y); break;
    case WeightType::f16: rows_typed<WeightType::f16>(x, M, K, w, N, n0, n1, bias, y); break;
  }
}
#endif

}  // namespace

bool small_linear_supported() noexcept {
#ifdef MGCHECK_SMALL_LINEAR_AVX512
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

void set_small_linear_threads(int n) {
  n = std::clamp(n, 1, 64);
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_pool && g_pool->size() == n) return;
  g_pool.reset();
  if (n > 1) g_pool = std::make_unique<Pool>(n);
  g_threads = n;
}

int small_linear_threads() noexcept { return g_threads.load(); }

void small_linear(const float* x, int64_t M, int64_t K, const void* w, WeightType type, int64_t N,
                  const float* bias, float* y) noexcept {
#ifdef MGCHECK_SMALL_LINEAR_AVX512
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * N + n] = bias ? bias[n] : 0.0f;
    return;
  }
  M = std::min(M, kSmallLinearMaxRows);
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  // Below ~256 KiB of weights a second thread costs more in wake-up than it saves.
  const int64_t bytes = N * K * (type == WeightType::f32 ? 4 : 2);
  int parts = g_pool && bytes >= (256 << 10) ? g_pool->size() : 1;
  parts = static_cast<int>(std::min<int64_t>(parts, (N + 3) / 4));
  if (parts <= 1) {
    rows(x, M, K, w, type, N, 0, N, bias, y);
    return;
  }
  // Contiguous row ranges, multiples of 4 rows, as equal as possible.
  const int64_t per = ((N + parts - 1) / parts + 3) / 4 * 4;
  g_pool->run(parts, [&](int p) {
    const int64_t n0 = std::min<int64_t>(N, p * per), n1 = std::min<int64_t>(N, n0 + per);
    if (n0 < n1) rows(x, M, K, w, type, N, n0, n1, bias, y);
  });
#else
  (void)x, (void)M, (void)K, (void)w, (void)type, (void)N, (void)bias, (void)y;
#endif
}

}  // namespace mgcheck::model

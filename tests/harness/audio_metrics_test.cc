// Audio checks on synthetic signals at and just past every threshold of contract §4.
#include "mgcheck/harness/audio_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

namespace mgcheck::harness {
namespace {

constexpr double kRate = 32000.0;

std::vector<float> sine(int64_t n, double amplitude, double freq = 440.0, double offset = 0.0) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] =
        static_cast<float>(offset + amplitude * std::sin(2 * std::numbers::pi * freq * static_cast<double>(i) / kRate));
  return x;
}

AudioView view(const std::vector<float>& x, int64_t batch = 1, int64_t channels = 1) {
  return AudioView{x, batch, channels, static_cast<int64_t>(x.size()) / (batch * channels), kRate};
}

// Runs the checks as a cell does; returns the findings.
format::Findings check(const std::vector<float>& x, const AudioThresholds& t = {}, int64_t batch = 1,
                       int64_t channels = 1) {
  AudioView v = view(x, batch, channels);
  AudioMetrics m = measure_audio(v, t);
  format::Findings f;
  audio_findings(m, t, static_cast<double>(v.length) / kRate, 0, "cpu/fp32/test", f);
  return f;
}

TEST(AudioMetrics, CleanSineMeasuresAsExpected) {
  auto x = sine(32000, 0.5);
  AudioMetrics m = measure_audio(view(x));
  EXPECT_EQ(m.nan, 0u);
  EXPECT_EQ(m.inf, 0u);
  EXPECT_NEAR(m.peak, 0.5, 1e-4);
  EXPECT_NEAR(m.rms_dbfs, 20 * std::log10(0.5 / std::sqrt(2.0)), 1e-3);  // -9.03 dBFS
  EXPECT_NEAR(m.dc, 0.0, 1e-6);
  EXPECT_EQ(m.clip_fraction, 0.0);
  EXPECT_LT(m.silent_run_s, 1e-3);  // only zero crossings
  EXPECT_EQ(check(x).size(), 0u);
}

TEST(AudioMetrics, NanAndInfAreCountedAndFail) {
  auto x = sine(1000, 0.5);
  x[10] = std::numeric_limits<float>::quiet_NaN();
  x[20] = std::numeric_limits<float>::quiet_NaN();
  x[30] = std::numeric_limits<float>::infinity();
  AudioMetrics m = measure_audio(view(x));
  EXPECT_EQ(m.nan, 2u);
  EXPECT_EQ(m.inf, 1u);
  EXPECT_TRUE(std::isfinite(m.peak));
  EXPECT_TRUE(std::isfinite(m.rms_dbfs));
  auto f = check(x);
  EXPECT_TRUE(f.has_code("MG-AUDIO-NAN"));
  EXPECT_TRUE(f.has_code("MG-AUDIO-INF"));
  EXPECT_TRUE(f.has_errors());
  EXPECT_EQ(f.items()[0].name, "cpu/fp32/test");
}

TEST(AudioMetrics, RmsSilenceThreshold) {
  // A sine of RMS exactly -59.9 dBFS passes (with a near-silence warning); -60.1 dBFS fails.
  auto amp = [](double db) { return std::pow(10.0, db / 20.0) * std::sqrt(2.0); };
  auto above = check(sine(32000, amp(-59.9)));
  EXPECT_FALSE(above.has_code("MG-AUDIO-SILENT"));
  EXPECT_TRUE(above.has_code("MG-AUDIO-NEAR-SILENT"));
  EXPECT_FALSE(above.has_errors());
  auto below = check(sine(32000, amp(-60.1)));
  EXPECT_TRUE(below.has_code("MG-AUDIO-SILENT"));
  EXPECT_TRUE(below.has_errors());
  // Near-silence boundary (-45 dBFS default): -44.9 clean, -45.1 warns.
  EXPECT_EQ(check(sine(32000, amp(-44.9))).size(), 0u);
  EXPECT_TRUE(check(sine(32000, amp(-45.1))).has_code("MG-AUDIO-NEAR-SILENT"));
}

TEST(AudioMetrics, AllZeroIsSilentWithFiniteDbfs) {
  std::vector<float> x(16000, 0.0f);
  AudioMetrics m = measure_audio(view(x));
  EXPECT_EQ(m.rms_dbfs, -400.0);
  EXPECT_NEAR(m.silent_run_s, 0.5, 1e-9);
  EXPECT_TRUE(check(x).has_code("MG-AUDIO-SILENT"));
}

TEST(AudioMetrics, SilentRunThreshold) {
  // Loud noise-free tone with a zeroed stretch: exactly half the clip passes, one sample more fails.
  const int64_t n = 32000;
  auto x = sine(n, 0.5, 1000.0, 0.0);
  // Shift the tone so no sample is near zero outside the hole (a DC-free square-ish wave is simpler).
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = (i / 16) % 2 ? 0.5f : -0.5f;
  auto half = x;
  std::fill(half.begin(), half.begin() + n / 2, 0.0f);
  AudioMetrics mh = measure_audio(view(half));
  EXPECT_NEAR(mh.silent_run_s, 0.5, 1e-9);
  EXPECT_FALSE(check(half).has_code("MG-AUDIO-SILENT"));
  auto more = x;
  std::fill(more.begin(), more.begin() + n / 2 + 1, 0.0f);
  EXPECT_TRUE(check(more).has_code("MG-AUDIO-SILENT"));
  // Samples below one 16-bit LSB count as digital silence; one LSB does not.
  auto tiny = x;
  std::fill(tiny.begin(), tiny.begin() + n / 2 + 1, 1e-6f);
  EXPECT_TRUE(check(tiny).has_code("MG-AUDIO-SILENT"));
  auto lsb = x;
  std::fill(lsb.begin(), lsb.begin() + n / 2 + 1, 1.0f / 32768.0f);
  EXPECT_FALSE(check(lsb).has_code("MG-AUDIO-SILENT"));
}

TEST(AudioMetrics, ClippingThreshold) {
  const int64_t n = 10000;
  auto x = sine(n, 0.5);
  auto at = x;
  for (int i = 0; i < 100; ++i) at[static_cast<size_t>(i * 50)] = (i % 2) ? 1.0f : -1.0f;  // exactly 1 %
  AudioMetrics m = measure_audio(view(at));
  EXPECT_DOUBLE_EQ(m.clip_fraction, 0.01);
  EXPECT_FALSE(check(at).has_code("MG-AUDIO-CLIPPING"));
  auto past = at;
  past[1] = 1.5f;  // one more: beyond ±1 counts too (never clamped)
  EXPECT_TRUE(check(past).has_code("MG-AUDIO-CLIPPING"));
  EXPECT_NEAR(measure_audio(view(past)).peak, 1.5, 1e-9);
  // 0.998 is below the 0.999 clip level.
  auto below = x;
  for (int i = 0; i < 500; ++i) below[static_cast<size_t>(i * 20)] = 0.998f;
  EXPECT_EQ(measure_audio(view(below)).clip_fraction, 0.0);
}

TEST(AudioMetrics, DcThreshold) {
  EXPECT_FALSE(check(sine(32000, 0.3, 440.0, 0.049)).has_code("MG-AUDIO-DC"));
  auto f = check(sine(32000, 0.3, 440.0, -0.051));
  EXPECT_TRUE(f.has_code("MG-AUDIO-DC"));
  EXPECT_NEAR(measure_audio(view(sine(32000, 0.3, 440.0, -0.051))).dc, -0.051, 1e-5);
}

TEST(AudioMetrics, WorstItemDecidesInABatch) {
  // Item 0 loud, item 1 silent: the batch fails; metrics report the worst item.
  auto loud = sine(8000, 0.5);
  std::vector<float> x = loud;
  x.insert(x.end(), 8000, 0.0f);
  AudioMetrics m = measure_audio(view(x, 2, 1));
  EXPECT_EQ(m.rms_dbfs, -400.0);
  EXPECT_NEAR(m.peak, 0.5, 1e-4);
  EXPECT_TRUE(check(x, {}, 2, 1).has_code("MG-AUDIO-SILENT"));
  // Same with channels: [1, 2, N], channel 1 DC-offset.
  std::vector<float> st = loud;
  auto dc = sine(8000, 0.1, 440.0, 0.2);
  st.insert(st.end(), dc.begin(), dc.end());
  EXPECT_NEAR(measure_audio(view(st, 1, 2)).dc, 0.2, 1e-4);
}

TEST(AudioMetrics, ThresholdsAreOptions) {
  AudioThresholds t;
  t.dc_abs = 0.1;
  EXPECT_FALSE(check(sine(32000, 0.3, 440.0, 0.08), t).has_code("MG-AUDIO-DC"));
  t.silence_rms_dbfs = -20;
  EXPECT_TRUE(check(sine(32000, 0.05), t).has_code("MG-AUDIO-SILENT"));
}

TEST(AudioMetrics, StuckCodes) {
  // [B=1, K=2, T=10]: every stream one code → 1.0.
  std::vector<int64_t> one(20, 7);
  EXPECT_DOUBLE_EQ(stuck_fraction(CodesView{one, 1, 2, 10}), 1.0);
  // 9 of 10 frames repeat one code in each stream → 0.9 (warns at the default threshold).
  std::vector<int64_t> nine(20, 3);
  nine[0] = 1;
  nine[10] = 2;
  EXPECT_DOUBLE_EQ(stuck_fraction(CodesView{nine, 1, 2, 10}), 0.9);
  // 8 of 10 → 0.8: no warning.
  std::vector<int64_t> eight = nine;
  eight[5] = 4;
  eight[15] = 4;
  EXPECT_DOUBLE_EQ(stuck_fraction(CodesView{eight, 1, 2, 10}), 0.8);
  // All different → 1/T.
  std::vector<int64_t> distinct(10);
  for (int i = 0; i < 10; ++i) distinct[static_cast<size_t>(i)] = i;
  EXPECT_DOUBLE_EQ(stuck_fraction(CodesView{distinct, 1, 1, 10}), 0.1);
  EXPECT_EQ(stuck_fraction(CodesView{{}, 0, 0, 0}), 0.0);

  auto warn = [](double stuck, int64_t frames) {
    AudioMetrics m;
    m.rms_dbfs = -10;
    m.stuck_fraction = stuck;
    format::Findings f;
    bool ok = audio_findings(m, {}, 1.0, frames, "c", f);
    EXPECT_TRUE(ok);  // a warning never fails the cell by itself
    return f.has_code("MG-AUDIO-STUCK-CODES");
  };
  EXPECT_TRUE(warn(0.9, 10));
  EXPECT_FALSE(warn(0.89, 10));
  EXPECT_FALSE(warn(1.0, 3));  // too short to judge
}

TEST(AudioMetrics, MalformedViewsMeasureNothing) {
  std::vector<float> x(10, 0.5f);
  AudioMetrics m = measure_audio(AudioView{x, 2, 1, 10, kRate});  // claims 20 samples, holds 10
  EXPECT_EQ(m.peak, 0.0);
  std::vector<int64_t> c(5, 1);
  EXPECT_EQ(stuck_fraction(CodesView{c, 1, 1, 10}), 0.0);
}

}  // namespace
}  // namespace mgcheck::harness

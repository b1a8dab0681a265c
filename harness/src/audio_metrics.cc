#include "mgcheck/harness/audio_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_map>

namespace mgcheck::harness {

double to_dbfs(double amplitude) {
  if (!(amplitude > 0)) return -400.0;
  return std::max(-400.0, 20.0 * std::log10(amplitude));
}

AudioMetrics measure_audio(const AudioView& a, const AudioThresholds& t) {
  AudioMetrics m;
  const double rate = a.sample_rate > 0 ? a.sample_rate : 1.0;
  const int64_t rows = a.batch * a.channels;
  if (rows <= 0 || a.length <= 0 || a.samples.size() < static_cast<size_t>(rows) * static_cast<size_t>(a.length))
    return m;
  double min_rms = INFINITY, worst_dc = 0, max_clip = 0;
  int64_t longest_silence = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = a.samples.data() + r * a.length;
    double sum = 0, sumsq = 0;
    int64_t finite = 0, clipped = 0, run = 0;
    for (int64_t i = 0; i < a.length; ++i) {
      const double v = x[i];
      if (std::isnan(v)) {
        ++m.nan;
        run = 0;  // NaN is not silence
        continue;
      }
      if (std::isinf(v)) {
        ++m.inf;
        ++clipped;  // an infinite sample is beyond full scale
        run = 0;
        continue;
      }
      const double av = std::fabs(v);
      ++finite;
      sum += v;
      sumsq += v * v;
      m.peak = std::max(m.peak, av);
      if (av >= t.clip_level) ++clipped;
      if (av < t.silence_level) {
        longest_silence = std::max(longest_silence, ++run);
      } else {
        run = 0;
      }
    }
    const double rms = finite > 0 ? std::sqrt(sumsq / static_cast<double>(finite)) : 0.0;
    const double dc = finite > 0 ? sum / static_cast<double>(finite) : 0.0;
    min_rms = std::min(min_rms, rms);
    if (std::fabs(dc) > std::fabs(worst_dc)) worst_dc = dc;
    max_clip = std::max(max_clip, static_cast<double>(clipped) / static_cast<double>(a.length));
  }
  m.rms_dbfs = to_dbfs(min_rms);
  m.dc = worst_dc;
  m.clip_fraction = max_clip;
  m.silent_run_s = static_cast<double>(longest_silence) / rate;
  return m;
}

double stuck_fraction(const CodesView& c) {
  const int64_t streams = c.batch * c.codebooks;
  if (streams <= 0 || c.frames <= 0 ||
      c.codes.size() < static_cast<size_t>(streams) * static_cast<size_t>(c.frames))
    return 0.0;
  double total = 0;
  std::unordered_map<int64_t, int64_t> counts;
  for (int64_t s = 0; s < streams; ++s) {
    counts.clear();
    int64_t best = 0;
    const int64_t* row = c.codes.data() + s * c.frames;
    for (int64_t i = 0; i < c.frames; ++i) best = std::max(best, ++counts[row[i]]);
    total += static_cast<double>(best) / static_cast<double>(c.frames);
  }
  return total / static_cast<double>(streams);
}

namespace {
std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
}  // namespace

bool audio_findings(const AudioMetrics& m, const AudioThresholds& t, double clip_seconds, int64_t frames,
                    const std::string& cell, format::Findings& out) {
  bool ok = true;
  auto error = [&](const char* code, std::string msg, const char* hint) {
    auto f = format::make_error(code, std::move(msg), hint);
    f.name = cell;
    out.push(std::move(f));
    ok = false;
  };
  auto warn = [&](const char* code, std::string msg, const char* hint) {
    auto f = format::make_warning(code, std::move(msg), hint);
    f.name = cell;
    out.push(std::move(f));
  };
  if (m.nan > 0)
    error("MG-AUDIO-NAN", "decoded audio holds " + std::to_string(m.nan) + " NaN samples",
          "NaN comes from NaN/Inf weights or an overflow (try fp32); check the weight statistics of quick");
  if (m.inf > 0)
    error("MG-AUDIO-INF", "decoded audio holds " + std::to_string(m.inf) + " infinite samples",
          "an overflow in the decoder (fp16 range?) or huge weights; compare with the fp32 cell");
  const bool silent_rms = m.rms_dbfs < t.silence_rms_dbfs;
  const bool silent_run = clip_seconds > 0 && m.silent_run_s > t.silent_run_fraction * clip_seconds;
  if (silent_rms || silent_run) {
    std::string why = silent_rms ? "RMS " + fmt("%.1f", m.rms_dbfs) + " dBFS is below " +
                                       fmt("%.1f", t.silence_rms_dbfs) + " dBFS"
                                 : "a run of digital silence lasts " + fmt("%.3f", m.silent_run_s) + " s of a " +
                                       fmt("%.3f", clip_seconds) + " s clip";
    error("MG-AUDIO-SILENT", "decoded audio is silent: " + why,
          "zeroed or missing decoder weights, or codes the decoder maps to nothing; check the compression model");
  } else if (m.rms_dbfs < t.near_silence_rms_dbfs) {
    warn("MG-AUDIO-NEAR-SILENT",
         "decoded audio is nearly silent: RMS " + fmt("%.1f", m.rms_dbfs) + " dBFS (below " +
             fmt("%.1f", t.near_silence_rms_dbfs) + ")",
         "listen to the WAV (--wav-dir); very quiet output often means scaled-down decoder weights");
  }
  if (m.clip_fraction > t.clip_fraction)
    error("MG-AUDIO-CLIPPING",
          fmt("%.2f", m.clip_fraction * 100) + " % of samples are at or beyond " + fmt("%.3f", t.clip_level) +
              " full scale (limit " + fmt("%.2f", t.clip_fraction * 100) + " %)",
          "the decoder output is too loud: a scaled output layer or wrong renormalisation scale");
  if (std::fabs(m.dc) > t.dc_abs)
    error("MG-AUDIO-DC", "decoded audio has a DC offset of " + fmt("%.4f", m.dc) + " (limit " + fmt("%.3f", t.dc_abs) + ")",
          "a biased final decoder convolution; check the decoder's last conv bias");
  if (frames >= 4 && m.stuck_fraction >= t.stuck_fraction)
    warn("MG-AUDIO-STUCK-CODES",
         "generation is stuck: on average " + fmt("%.0f", m.stuck_fraction * 100) +
             " % of each codebook's frames repeat one code",
         "an LM head biased towards one code, or collapsed logits; inspect the LM output layers");
  return ok;
}

}  // namespace mgcheck::harness

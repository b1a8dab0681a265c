// Audio checks on the raw decoder output (contract §4), in plain C++ over float buffers: NaN/Inf counts,
// peak, RMS, longest digital-silence run, clipping, DC offset, and stuck generation on the codes. Audio is
// measured exactly as the decoder produced it — before any clamping or normalisation — so every defect
// the decoder has is visible here.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "mgcheck/format/finding.h"
#include "mgcheck/harness/report.h"

namespace mgcheck::harness {

// Thresholds; the defaults are the contract's (§4). Each is a `deep` option.
struct AudioThresholds {
  double silence_rms_dbfs = -60.0;       // fail: RMS of an item/channel below this (dBFS)
  double silent_run_fraction = 0.5;      // fail: a digital-silence run longer than this share of the clip
  double near_silence_rms_dbfs = -45.0;  // warn: RMS below this (but not silent)
  double silence_level = 0.5 / 32768.0;  // |x| below this is digital silence (rounds to 0 in 16-bit PCM)
  double clip_level = 0.999;             // |x| at or above this counts as clipped
  double clip_fraction = 0.01;           // fail: more than this share of samples clipped
  double dc_abs = 0.05;                  // fail: |mean| of an item/channel above this
  double stuck_fraction = 0.9;           // warn: codes stuck at or above this share (see below)
};

// A read-only view of audio laid out [B, C, N] row-major (the decoder's output).
struct AudioView {
  std::span<const float> samples;
  int64_t batch = 0, channels = 0, length = 0;
  double sample_rate = 0;
};

// A read-only view of codes [B, K, T] row-major.
struct CodesView {
  std::span<const int64_t> codes;
  int64_t batch = 0, codebooks = 0, frames = 0;
};

// Metrics over the whole batch, each the worst case over items and channels so a single bad item
// shows: nan/inf are totals; peak is the largest finite |x|; rms_dbfs the quietest item/channel's RMS
// over its finite samples (-inf dBFS is reported as -400); silent_run_s the longest run of digital
// silence in any item/channel; clip_fraction the largest per-item/channel clipped share; dc the signed
// mean of the item/channel with the largest |mean|. stuck_fraction is left 0 (see stuck_fraction()).
AudioMetrics measure_audio(const AudioView& audio, const AudioThresholds& t = {});

// Stuck generation: for each (item, codebook) stream, the share of its frames holding the stream's most
// frequent code; the result is the mean over streams (1.0 = every stream repeats one code throughout).
// A single stream stuck by chance in a short clip does not dominate; an LM head that always picks one
// code gives 1.0. Returns 0 for empty codes.
double stuck_fraction(const CodesView& codes);

// Appends one finding per failing or suspicious metric (MG-AUDIO-NAN, -INF, -SILENT, -NEAR-SILENT,
// -CLIPPING, -DC, -STUCK-CODES), naming `cell` (e.g. "cpu/fp32/unconditional") in the finding's name.
// Returns true when none of them is an error (the cell passes the audio checks). `frames` lets the
// stuck check stay quiet on clips too short to judge (fewer than 4 frames).
bool audio_findings(const AudioMetrics& m, const AudioThresholds& t, double clip_seconds, int64_t frames,
                    const std::string& cell, format::Findings& out);

// Amplitude → dBFS (20·log10|x|); 0 → -400 so JSON stays finite.
double to_dbfs(double amplitude);

}  // namespace mgcheck::harness

// `deep --html FILE`: one self-contained page (no external resources of any kind) with the verdict, the
// findings, every matrix cell's metrics and, per cell with audio, a waveform (inline SVG), a spectrogram
// (PNG data URI, hand-written FFT + zlib) and an <audio> player holding the exact float WAV.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mgcheck/harness/report.h"

namespace mgcheck::harness {

// The audio of one cell to draw: planar [channels, frames] of the batch's first item, exactly as decoded.
struct CellMedia {
  size_t cell = 0;  // index into Report::cells
  std::vector<float> planar;
  int64_t channels = 0, frames = 0;
  int sample_rate = 0;
};

struct HtmlOptions {
  double max_player_seconds = 30.0;  // longer clips: the player holds the first seconds only (noted)
  int picture_width = 800;
};

// The whole page.
std::string render_html(const Report& report, const std::vector<CellMedia>& media, const HtmlOptions& o = {});

// Pieces, exposed for tests.
std::string base64(std::span<const uint8_t> bytes);
// An RGB8 PNG (filter 0 rows, zlib-deflated IDAT, CRCs via zlib).
std::vector<uint8_t> encode_png_rgb(std::span<const uint8_t> rgb, int width, int height);
// Magnitude spectrogram in dB of one channel: `bins` rows (low frequency first) × `columns`, Hann window,
// radix-2 FFT of size 2·bins. Non-finite samples are treated as 0 (their count is in the metrics).
std::vector<float> spectrogram_db(std::span<const float> x, int bins, int columns);
// In-place radix-2 complex FFT (size a power of two).
void fft_inplace(std::vector<double>& re, std::vector<double>& im);
std::string html_escape(const std::string& s);

}  // namespace mgcheck::harness

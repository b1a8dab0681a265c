// Audio files through libsndfile. Writing: always 32-bit IEEE float WAV at the model's sample rate holding
// exactly the decoder output — never normalised, clamped or dithered, so NaN, values beyond ±1 and DC
// survive for inspection (contract §2). Reading: any format libsndfile supports, integer formats scaled
// to [-1, 1) as soundfile/torchaudio do. There is no resampler: a sample-rate mismatch is refused.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mgcheck::harness {

// Planar audio [channels, frames].
struct PlanarAudio {
  std::vector<float> samples;
  int64_t channels = 0;
  int64_t frames = 0;
  int sample_rate = 0;
  std::string format;  // libsndfile's description of the source format, for messages
};

// Writes planar [channels, frames] as a 32-bit float WAV (WAVE_FORMAT_IEEE_FLOAT; libsndfile adds a PEAK
// chunk). Returns false with `error` set on failure.
bool write_wav_float(const std::string& path, std::span<const float> planar, int64_t channels, int64_t frames,
                     int sample_rate, std::string& error);

// The same WAV file in memory (for the HTML report's <audio> data URI).
bool wav_float_bytes(std::span<const float> planar, int64_t channels, int64_t frames, int sample_rate,
                     std::vector<uint8_t>& out, std::string& error);

// Reads any libsndfile-supported file into planar float samples.
bool read_audio_file(const std::string& path, PlanarAudio& out, std::string& error);

// mirrors audiocraft/data/audio_utils.py convert_audio_channels: same count → unchanged; to mono → mean
// over channels; from mono → repeat; more channels than asked → keep the first ones; fewer (not mono) →
// refused.
bool convert_channels(PlanarAudio& audio, int64_t channels, std::string& error);

// mgcheck has no resampler: refuses a file whose rate differs from the model's, saying how to convert.
bool require_sample_rate(const PlanarAudio& audio, int expected, const std::string& path, std::string& error);

}  // namespace mgcheck::harness

#include "mgcheck/harness/wav_io.h"

#include <sndfile.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace mgcheck::harness {

namespace {

constexpr int64_t kMaxChannels = 1024;

bool valid_shape(std::span<const float> planar, int64_t channels, int64_t frames, int sample_rate,
                 std::string& error) {
  if (channels <= 0 || channels > kMaxChannels || frames < 0 || sample_rate <= 0) {
    error = "invalid audio shape (channels " + std::to_string(channels) + ", frames " + std::to_string(frames) +
            ", rate " + std::to_string(sample_rate) + ")";
    return false;
  }
  if (static_cast<uint64_t>(frames) > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(channels) ||
      planar.size() < static_cast<uint64_t>(channels) * static_cast<uint64_t>(frames)) {
    error = "audio buffer is smaller than channels x frames";
    return false;
  }
  return true;
}

// Writes planar samples as interleaved frames, a block at a time, without touching their values.
bool write_frames(SNDFILE* f, std::span<const float> planar, int64_t channels, int64_t frames, std::string& error) {
  // Float data into a float file is stored verbatim; turn off every libsndfile conversion anyway.
  sf_command(f, SFC_SET_NORM_FLOAT, nullptr, SF_FALSE);
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_FALSE);
  constexpr int64_t kBlock = 4096;
  std::vector<float> buf(static_cast<size_t>(kBlock * channels));
  for (int64_t start = 0; start < frames; start += kBlock) {
    const int64_t n = std::min(kBlock, frames - start);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < channels; ++c) buf[static_cast<size_t>(i * channels + c)] = planar[c * frames + start + i];
    if (sf_writef_float(f, buf.data(), n) != n) {
      error = std::string("libsndfile write failed: ") + sf_strerror(f);
      return false;
    }
  }
  return true;
}

SF_INFO float_wav_info(int64_t channels, int sample_rate) {
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = static_cast<int>(channels);
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  return info;
}

// libsndfile virtual I/O over a growable byte vector.
struct MemFile {
  std::vector<uint8_t>* bytes;
  sf_count_t pos = 0;
};
sf_count_t mem_len(void* u) { return static_cast<sf_count_t>(static_cast<MemFile*>(u)->bytes->size()); }
sf_count_t mem_seek(sf_count_t off, int whence, void* u) {
  auto* m = static_cast<MemFile*>(u);
  sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : static_cast<sf_count_t>(m->bytes->size());
  if (base + off < 0) return -1;
  m->pos = base + off;
  return m->pos;
}
sf_count_t mem_read(void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemFile*>(u);
  const sf_count_t size = static_cast<sf_count_t>(m->bytes->size());
  if (m->pos >= size || count <= 0) return 0;
  const sf_count_t n = std::min(count, size - m->pos);
  std::memcpy(ptr, m->bytes->data() + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t mem_write(const void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemFile*>(u);
  if (count <= 0) return 0;
  const size_t end = static_cast<size_t>(m->pos + count);
  if (end > m->bytes->size()) m->bytes->resize(end);
  std::memcpy(m->bytes->data() + m->pos, ptr, static_cast<size_t>(count));
  m->pos += count;
  return count;
}
sf_count_t mem_tell(void* u) { return static_cast<MemFile*>(u)->pos; }

}  // namespace

bool write_wav_float(const std::string& path, std::span<const float> planar, int64_t channels, int64_t frames,
                     int sample_rate, std::string& error) {
  if (!valid_shape(planar, channels, frames, sample_rate, error)) return false;
  SF_INFO info = float_wav_info(channels, sample_rate);
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) {
    error = "cannot write " + path + ": " + sf_strerror(nullptr);
    return false;
  }
  bool ok = write_frames(f, planar, channels, frames, error);
  if (sf_close(f) != 0 && ok) {
    error = "cannot finish " + path;
    ok = false;
  }
  if (!ok) error = path + ": " + error;
  return ok;
}

bool wav_float_bytes(std::span<const float> planar, int64_t channels, int64_t frames, int sample_rate,
                     std::vector<uint8_t>& out, std::string& error) {
  if (!valid_shape(planar, channels, frames, sample_rate, error)) return false;
  out.clear();
  MemFile mem{&out, 0};
  SF_VIRTUAL_IO io{mem_len, mem_seek, mem_read, mem_write, mem_tell};
  SF_INFO info = float_wav_info(channels, sample_rate);
  SNDFILE* f = sf_open_virtual(&io, SFM_WRITE, &info, &mem);
  if (!f) {
    error = std::string("libsndfile: ") + sf_strerror(nullptr);
    return false;
  }
  bool ok = write_frames(f, planar, channels, frames, error);
  sf_close(f);
  return ok;
}

bool read_audio_file(const std::string& path, PlanarAudio& out, std::string& error) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) {
    error = "cannot read audio file " + path + ": " + sf_strerror(nullptr);
    return false;
  }
  SF_FORMAT_INFO fi{};
  fi.format = info.format & SF_FORMAT_TYPEMASK;
  out.format = sf_command(f, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name ? fi.name : "audio";
  if (info.channels <= 0 || info.channels > kMaxChannels || info.frames < 0 || info.samplerate <= 0) {
    sf_close(f);
    error = path + ": implausible audio header (" + std::to_string(info.channels) + " channels, " +
            std::to_string(info.samplerate) + " Hz)";
    return false;
  }
  out.channels = info.channels;
  out.sample_rate = info.samplerate;
  // Read in blocks instead of trusting the header's frame count for one allocation.
  std::vector<float> inter;
  std::vector<float> buf(static_cast<size_t>(4096 * info.channels));
  for (;;) {
    sf_count_t n = sf_readf_float(f, buf.data(), 4096);
    if (n <= 0) break;
    inter.insert(inter.end(), buf.begin(), buf.begin() + n * info.channels);
  }
  const int err = sf_error(f);
  sf_close(f);
  if (err != SF_ERR_NO_ERROR) {
    error = path + ": " + sf_error_number(err);
    return false;
  }
  out.frames = static_cast<int64_t>(inter.size()) / out.channels;
  out.samples.assign(inter.size(), 0.0f);
  for (int64_t i = 0; i < out.frames; ++i)
    for (int64_t c = 0; c < out.channels; ++c)
      out.samples[static_cast<size_t>(c * out.frames + i)] = inter[static_cast<size_t>(i * out.channels + c)];
  return true;
}

bool convert_channels(PlanarAudio& a, int64_t channels, std::string& error) {
  if (channels <= 0) {
    error = "invalid channel count " + std::to_string(channels);
    return false;
  }
  if (a.channels == channels) return true;
  const int64_t n = a.frames;
  std::vector<float> out(static_cast<size_t>(channels * n));
  if (channels == 1) {
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;  // mean over channels, as wav.mean(dim=-2)
      for (int64_t c = 0; c < a.channels; ++c) s += a.samples[static_cast<size_t>(c * n + i)];
      out[static_cast<size_t>(i)] = static_cast<float>(s / static_cast<double>(a.channels));
    }
  } else if (a.channels == 1) {
    for (int64_t c = 0; c < channels; ++c) std::copy_n(a.samples.begin(), n, out.begin() + c * n);
  } else if (a.channels > channels) {
    std::copy_n(a.samples.begin(), channels * n, out.begin());
  } else {
    error = "the audio has " + std::to_string(a.channels) + " channels, fewer than the model's " +
            std::to_string(channels) + ", and is not mono (AudioCraft refuses this too)";
    return false;
  }
  a.samples = std::move(out);
  a.channels = channels;
  return true;
}

bool require_sample_rate(const PlanarAudio& a, int expected, const std::string& path, std::string& error) {
  if (a.sample_rate == expected) return true;
  error = path + " is " + std::to_string(a.sample_rate) + " Hz but the model runs at " + std::to_string(expected) +
          " Hz; mgcheck does not resample — convert it first, e.g. `sox IN.wav -r " + std::to_string(expected) +
          " OUT.wav` or `ffmpeg -i IN.wav -ar " + std::to_string(expected) + " OUT.wav`";
  return false;
}

}  // namespace mgcheck::harness

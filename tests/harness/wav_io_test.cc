// WAV I/O: float WAVs hold the decoder output bit for bit (checked with an independent RIFF parser in
// Python's standard library), integer WAVs written by Python's `wave` module read back scaled, and
// AudioCraft's channel conversion.
#include "mgcheck/harness/wav_io.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

#include "test_support.h"

namespace mgcheck::harness {
namespace {

using test::run_python;
using test::TempDir;

// Planar [2, 6] with the values a decoder may produce and a normaliser would destroy.
std::vector<float> awkward_planar() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  return {0.25f, -0.5f, nan, 1.5f, -2.0f, 1e-40f,   // channel 0
          0.07f, 0.07f, 0.07f, inf, -inf, 0.0f};    // channel 1
}

std::string hex_of_interleaved(const std::vector<float>& planar, int64_t channels, int64_t frames) {
  std::ostringstream s;
  for (int64_t i = 0; i < frames; ++i)
    for (int64_t c = 0; c < channels; ++c) {
      uint32_t bits;
      std::memcpy(&bits, &planar[static_cast<size_t>(c * frames + i)], 4);
      for (int b = 0; b < 4; ++b) {  // little-endian byte order, as in the file
        char h[3];
        std::snprintf(h, sizeof h, "%02x", (bits >> (8 * b)) & 0xffu);
        s << h;
      }
    }
  return s.str();
}

// An independent RIFF/WAVE chunk walker (no libsndfile): format tag, channels, rate, bits, data hex.
constexpr const char* kParseWav = R"(
import struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[:4] == b'RIFF' and b[8:12] == b'WAVE'
pos, fmt, data = 12, None, None
while pos + 8 <= len(b):
    cid, size = b[pos:pos+4], struct.unpack('<I', b[pos+4:pos+8])[0]
    body = b[pos+8:pos+8+size]
    if cid == b'fmt ': fmt = struct.unpack('<HHIIHH', body[:16])
    if cid == b'data': data = body
    pos += 8 + size + (size & 1)
tag = fmt[0]
if tag == 0xFFFE: tag = struct.unpack('<H', b[b.index(b'fmt ')+8+24:b.index(b'fmt ')+8+26])[0]
print(tag, fmt[1], fmt[2], fmt[5], data.hex())
)";

TEST(WavIo, FloatWavKeepsEveryValueBitForBit) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 not available");
  TempDir dir("wav");
  auto planar = awkward_planar();
  std::string err;
  ASSERT_TRUE(write_wav_float(dir.file("a.wav"), planar, 2, 6, 32000, err)) << err;
  auto r = run_python(kParseWav, {dir.file("a.wav")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  int tag = 0, channels = 0, rate = 0, bits = 0;
  std::string hex;
  in >> tag >> channels >> rate >> bits >> hex;
  EXPECT_EQ(tag, 3);  // WAVE_FORMAT_IEEE_FLOAT
  EXPECT_EQ(channels, 2);
  EXPECT_EQ(rate, 32000);
  EXPECT_EQ(bits, 32);
  EXPECT_EQ(hex, hex_of_interleaved(planar, 2, 6));  // NaN, ±Inf, 1.5, -2, subnormal all survive
}

TEST(WavIo, FloatWavReadsBackIdentically) {
  TempDir dir("wav");
  auto planar = awkward_planar();
  std::string err;
  ASSERT_TRUE(write_wav_float(dir.file("a.wav"), planar, 2, 6, 16000, err)) << err;
  PlanarAudio a;
  ASSERT_TRUE(read_audio_file(dir.file("a.wav"), a, err)) << err;
  EXPECT_EQ(a.channels, 2);
  EXPECT_EQ(a.frames, 6);
  EXPECT_EQ(a.sample_rate, 16000);
  ASSERT_EQ(a.samples.size(), planar.size());
  EXPECT_EQ(std::memcmp(a.samples.data(), planar.data(), planar.size() * 4), 0);
}

TEST(WavIo, InMemoryWavEqualsTheFile) {
  TempDir dir("wav");
  auto planar = awkward_planar();
  std::string err;
  ASSERT_TRUE(write_wav_float(dir.file("a.wav"), planar, 2, 6, 32000, err)) << err;
  std::vector<uint8_t> mem;
  ASSERT_TRUE(wav_float_bytes(planar, 2, 6, 32000, mem, err)) << err;
  EXPECT_EQ(mem, test::read_file(dir.file("a.wav")));
}

TEST(WavIo, ReadsPcm16WrittenByPythonScaledToUnitRange) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 not available");
  TempDir dir("wav");
  auto r = run_python(R"(
import wave, struct, sys
w = wave.open(sys.argv[1], 'wb'); w.setnchannels(2); w.setsampwidth(2); w.setframerate(22050)
w.writeframes(struct.pack('<6h', 16384, -32768, 32767, 0, -1, 100)); w.close()
)",
                      {dir.file("p.wav")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  PlanarAudio a;
  std::string err;
  ASSERT_TRUE(read_audio_file(dir.file("p.wav"), a, err)) << err;
  EXPECT_EQ(a.channels, 2);
  EXPECT_EQ(a.frames, 3);
  EXPECT_EQ(a.sample_rate, 22050);
  const std::vector<float> want = {16384 / 32768.f, 32767 / 32768.f, -1 / 32768.f,  // channel 0
                                   -1.0f, 0.0f, 100 / 32768.f};                     // channel 1
  ASSERT_EQ(a.samples.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(a.samples[i], want[i]) << i;
}

TEST(WavIo, GarbageAndMissingFilesAreErrorsNotCrashes) {
  TempDir dir("wav");
  test::write_text(dir.file("x.wav"), "RIFF\x10\0\0\0WAVEjunkjunkjunk");
  PlanarAudio a;
  std::string err;
  EXPECT_FALSE(read_audio_file(dir.file("x.wav"), a, err));
  EXPECT_FALSE(err.empty());
  err.clear();
  EXPECT_FALSE(read_audio_file(dir.file("absent.wav"), a, err));
  EXPECT_NE(err.find("absent.wav"), std::string::npos);
  std::vector<float> x(4, 0.f);
  EXPECT_FALSE(write_wav_float(dir.file("y.wav"), x, 2, 3, 32000, err));  // buffer too small
  EXPECT_FALSE(write_wav_float(dir.file("no/such/dir.wav"), x, 1, 4, 32000, err));
}

TEST(WavIo, ConvertChannelsMirrorsAudiocraft) {
  PlanarAudio st{{1, 2, 3, /**/ 3, 4, 5}, 2, 3, 32000, ""};
  std::string err;
  PlanarAudio mono = st;
  ASSERT_TRUE(convert_channels(mono, 1, err));
  EXPECT_EQ(mono.samples, (std::vector<float>{2, 3, 4}));  // mean over channels
  PlanarAudio up{{1, 2}, 1, 2, 32000, ""};
  ASSERT_TRUE(convert_channels(up, 2, err));
  EXPECT_EQ(up.samples, (std::vector<float>{1, 2, 1, 2}));  // mono repeated
  PlanarAudio three{{1, 1, 2, 2, 3, 3}, 3, 2, 32000, ""};
  ASSERT_TRUE(convert_channels(three, 2, err));
  EXPECT_EQ(three.samples, (std::vector<float>{1, 1, 2, 2}));  // first channels kept
  PlanarAudio two = st;
  EXPECT_FALSE(convert_channels(two, 3, err));  // fewer, not mono: refused
  EXPECT_NE(err.find("not mono"), std::string::npos);
}

TEST(WavIo, SampleRateMismatchIsRefusedWithAHint) {
  PlanarAudio a{{0}, 1, 1, 44100, ""};
  std::string err;
  EXPECT_TRUE(require_sample_rate(a, 44100, "in.wav", err));
  EXPECT_FALSE(require_sample_rate(a, 32000, "in.wav", err));
  EXPECT_NE(err.find("44100"), std::string::npos);
  EXPECT_NE(err.find("32000"), std::string::npos);
  EXPECT_NE(err.find("does not resample"), std::string::npos);
}

}  // namespace
}  // namespace mgcheck::harness

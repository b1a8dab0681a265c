// The HTML report: self-contained (no external resources), well-formed, pictures and players that decode
// (checked by Python's standard library: html.parser, zlib, struct), an FFT against a naive DFT, and a
// render in real headless Chromium when it is installed.
#include "mgcheck/harness/html_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numbers>
#include <sstream>

#include "test_support.h"

namespace mgcheck::harness {
namespace {

using test::TempDir;

TEST(HtmlReport, Base64KnownVectors) {
  auto b = [](const std::string& s) {
    return base64(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  EXPECT_EQ(b(""), "");
  EXPECT_EQ(b("f"), "Zg==");
  EXPECT_EQ(b("fo"), "Zm8=");
  EXPECT_EQ(b("foo"), "Zm9v");
  EXPECT_EQ(b("foobar"), "Zm9vYmFy");
  EXPECT_EQ(b(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(HtmlReport, FftMatchesNaiveDft) {
  const size_t n = 64;
  std::vector<double> re(n), im(n);
  for (size_t i = 0; i < n; ++i) {
    re[i] = std::sin(0.3 * static_cast<double>(i)) + 0.1 * static_cast<double>(i % 7);
    im[i] = std::cos(1.1 * static_cast<double>(i));
  }
  std::vector<std::complex<double>> want(n);
  for (size_t k = 0; k < n; ++k)
    for (size_t t = 0; t < n; ++t)
      want[k] += std::complex<double>(re[t], im[t]) *
                 std::polar(1.0, -2 * std::numbers::pi * static_cast<double>(k * t) / static_cast<double>(n));
  fft_inplace(re, im);
  for (size_t k = 0; k < n; ++k) {
    EXPECT_NEAR(re[k], want[k].real(), 1e-9) << k;
    EXPECT_NEAR(im[k], want[k].imag(), 1e-9) << k;
  }
}

TEST(HtmlReport, SpectrogramPeaksAtTheToneBin) {
  // 32 kHz, 512-point FFT: bin spacing 62.5 Hz; a 2 kHz tone lands in bin 32.
  std::vector<float> x(8000);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(0.5 * std::sin(2 * std::numbers::pi * 2000.0 * static_cast<double>(i) / 32000.0));
  x[100] = std::numeric_limits<float>::quiet_NaN();  // tolerated
  auto db = spectrogram_db(x, 256, 10);
  ASSERT_EQ(db.size(), 2560u);
  for (int c = 0; c < 10; ++c) {
    int best = 0;
    for (int b = 0; b < 256; ++b)
      if (db[static_cast<size_t>(b * 10 + c)] > db[static_cast<size_t>(best * 10 + c)]) best = b;
    EXPECT_EQ(best, 32) << "column " << c;
  }
}

Report sample_report() {
  Report r;
  r.command = "deep";
  r.target = "corpus/<odd> & \"name\"";
  r.environment = {{"torch", "1.13.1"}, {"threads", 1}, {"cpu", "test cpu"}, {"device", "cpu"}};
  auto f = format::make_error("MG-AUDIO-NAN", "decoded audio holds 3 NaN samples <script>alert(1)</script>",
                              "check the weights");
  f.name = "cpu/fp16/text";
  r.findings.push(f);
  r.findings.push(format::make_warning("MG-AUDIO-STUCK-CODES", "stuck", "inspect the heads"));
  CellResult a{"cpu", "fp32", "unconditional", "pass", "", 0.5, 40.0, 2.5, {2, 4, 8}, AudioMetrics{}, {}};
  a.audio->rms_dbfs = -12.0;
  a.audio->peak = 0.6;
  CellResult b{"cpu", "fp16", "text", "fail", "MG-AUDIO-NAN: decoded audio holds 3 NaN samples", 0.7, 30.0, 3.0,
               {2, 4, 8}, AudioMetrics{}, {{"max_abs_vs_fp32", 0.01}, {"tolerance", 0.05}}};
  b.audio->nan = 3;
  CellResult c{"cuda", "fp32", "greedy", "skip", "CUDA is not available in this libtorch build", 0, 0, 0, {}, {}, {}};
  r.cells = {a, b, c};
  r.reference.push_back({"encodec/codes", 0.0, 0.0, "pass", {}, ""});
  r.reference.push_back({"lm/logits_null", 0.2, 1e-4, "fail", {0, 1, 2, 3}, "beyond tolerance"});
  r.reference.push_back({"gen_sampled_uncond/codes", 5, 0, "info", {}, "sampled: informative"});
  return r;
}

std::vector<CellMedia> sample_media() {
  const int rate = 16000;
  const int64_t n = 8000;
  CellMedia m0{0, std::vector<float>(static_cast<size_t>(2 * n)), 2, n, rate};
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    m0.planar[static_cast<size_t>(i)] = static_cast<float>(0.4 * std::sin(2 * std::numbers::pi * (200 + 3000 * t) * t));
    m0.planar[static_cast<size_t>(n + i)] = static_cast<float>(0.2 * std::sin(2 * std::numbers::pi * 440 * t) + 0.05);
  }
  CellMedia m1{1, std::vector<float>(static_cast<size_t>(n), 0.3f), 1, n, rate};
  for (int64_t i = 0; i < n; ++i) m1.planar[static_cast<size_t>(i)] = static_cast<float>(1.6 * std::sin(0.01 * i));
  m1.planar[4000] = std::numeric_limits<float>::quiet_NaN();
  m1.planar[4001] = std::numeric_limits<float>::quiet_NaN();
  m1.planar[4002] = std::numeric_limits<float>::infinity();
  return {m0, m1};
}

// Parses the page with html.parser; checks balanced tags, no external resources, and decodes every data
// URI: PNGs (signature, IHDR, CRCs, inflated size) and WAVs (float format, sample bits of the first cell).
constexpr const char* kValidate = R"(
import sys, re, base64, struct, zlib, html.parser
page = open(sys.argv[1], encoding='utf-8').read()
low = page.lower()
for bad in ('http:', 'https:', '<script', '<link', '@import', 'url(', '<iframe', '<object', '<embed'):
    assert bad not in low, bad
VOID = {'meta', 'img', 'br', 'hr', 'input', 'link', 'source', 'rect', 'line', 'path'}
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.stack = []; s.count = {}; s.uris = []
    def handle_starttag(s, tag, attrs):
        s.count[tag] = s.count.get(tag, 0) + 1
        for k, v in attrs:
            if k in ('src', 'href') and v and not v.startswith(('data:', '#')): raise SystemExit('external ' + v)
            if k == 'src' and v.startswith('data:'): s.uris.append(v)
        if tag not in VOID: s.stack.append(tag)
    def handle_startendtag(s, tag, attrs):  # <img .../>: the page is well-formed XML too
        s.handle_starttag(tag, attrs)
        if tag not in VOID: s.stack.pop()
    def handle_endtag(s, tag):
        if tag in VOID: return
        assert s.stack and s.stack[-1] == tag, (tag, s.stack[-3:])
        s.stack.pop()
p = P(); p.feed(page); p.close()
assert p.stack == [], p.stack
assert 'alert(1)</script>' not in page
pngs = wavs = 0
for u in p.uris:
    head, data = u.split(',', 1)
    b = base64.b64decode(data, validate=True)
    if head == 'data:image/png;base64':
        assert b[:8] == b'\x89PNG\r\n\x1a\n'
        pos, idat, dims = 8, b'', None
        while pos < len(b):
            n = struct.unpack('>I', b[pos:pos+4])[0]; t = b[pos+4:pos+8]; d = b[pos+8:pos+8+n]
            assert struct.unpack('>I', b[pos+8+n:pos+12+n])[0] == zlib.crc32(t + d), 'crc'
            if t == b'IHDR': dims = struct.unpack('>IIBBBBB', d)
            if t == b'IDAT': idat += d
            pos += 12 + n
        w, h = dims[0], dims[1]
        assert dims[2:] == (8, 2, 0, 0, 0)
        assert len(zlib.decompress(idat)) == h * (3 * w + 1)
        pngs += 1
    elif head == 'data:audio/wav;base64':
        assert b[:4] == b'RIFF' and b[8:12] == b'WAVE'
        i = b.index(b'fmt '); tag, ch, rate = struct.unpack('<HHI', b[i+8:i+16])
        j = b.index(b'data'); n = struct.unpack('<I', b[j+4:j+8])[0]
        assert tag == 3 and rate == 16000
        if wavs == 0: print('wav0', ch, n, b[j+8:j+8+8].hex())
        wavs += 1
print('counts', p.count.get('svg', 0), pngs, wavs, p.count.get('section', 0), p.count.get('audio', 0))
)";

TEST(HtmlReport, PageIsSelfContainedAndDecodes) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 not available");
  TempDir dir("html");
  Report r = sample_report();
  auto media = sample_media();
  std::string page = render_html(r, media);
  test::write_text(dir.file("r.html"), page);
  auto res = test::run_python(kValidate, {dir.file("r.html")});
  ASSERT_EQ(res.exit_code, 0) << res.err << res.out;
  // Two cells with audio: 2 waveforms, 2 spectrograms, 2 players; 3 cell sections.
  EXPECT_NE(res.out.find("counts 2 2 2 3 2"), std::string::npos) << res.out;
  // The first player holds the first cell's exact samples: stereo, 8000 frames × 2 × 4 bytes; the first
  // interleaved frame is (ch0[0], ch1[0]).
  std::ostringstream want;
  for (float v : {media[0].planar[0], media[0].planar[8000]}) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int k = 0; k < 4; ++k) {
      char hx[3];
      std::snprintf(hx, sizeof hx, "%02x", (bits >> (8 * k)) & 0xffu);
      want << hx;
    }
  }
  EXPECT_NE(res.out.find("wav0 2 64000 " + want.str()), std::string::npos) << res.out;
  // Text content: escaped target, metrics, tolerances, the reference failure and its index.
  EXPECT_NE(page.find("corpus/&lt;odd&gt; &amp; &quot;name&quot;"), std::string::npos);
  EXPECT_NE(page.find("lm/logits_null"), std::string::npos);
  EXPECT_NE(page.find("[0,1,2,3]"), std::string::npos);
  EXPECT_NE(page.find("max_abs_vs_fp32"), std::string::npos);
  EXPECT_NE(page.find("CUDA is not available"), std::string::npos);
  EXPECT_NE(page.find("verdict: fail"), std::string::npos);
}

TEST(HtmlReport, RendersInHeadlessChromium) {
  const char* chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) GTEST_SKIP() << "chromium is not installed";
  TempDir dir("html");
  test::write_text(dir.file("r.html"), render_html(sample_report(), sample_media()));
  std::string shot = dir.file("shot.png");
  auto res = test::run_process({chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                "--no-first-run", "--user-data-dir=" + dir.file("profile"),
                                "--screenshot=" + shot, "--window-size=1200,1600", "file://" + dir.file("r.html")});
  ASSERT_TRUE(std::filesystem::exists(shot)) << "exit " << res.exit_code << "\n" << res.err;
  auto png = test::read_file(shot);
  ASSERT_GT(png.size(), 20000u);  // a blank 1200×1600 page compresses to a few kB
  EXPECT_EQ(std::memcmp(png.data(), "\x89PNG", 4), 0);
  // Keep a copy for a human look when asked.
  if (const char* keep = std::getenv("MGCHECK_KEEP_SCREENSHOT")) test::write_file(keep, png);
}

}  // namespace
}  // namespace mgcheck::harness

#include "mgcheck/harness/html_report.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <sstream>

#include "mgcheck/harness/audio_metrics.h"
#include "mgcheck/harness/text.h"
#include "mgcheck/harness/wav_io.h"

namespace mgcheck::harness {

// Attribute-safe everywhere: the page is well-formed XML as well as HTML, whatever bytes a name holds.
std::string html_escape(const std::string& s) { return xml_text(s, true); }

std::string base64(std::span<const uint8_t> b) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  o.reserve((b.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= b.size(); i += 3) {
    uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8) | b[i + 2];
    o += kAlphabet[(v >> 18) & 63];
    o += kAlphabet[(v >> 12) & 63];
    o += kAlphabet[(v >> 6) & 63];
    o += kAlphabet[v & 63];
  }
  if (i + 1 == b.size()) {
    uint32_t v = uint32_t{b[i]} << 16;
    o += kAlphabet[(v >> 18) & 63];
    o += kAlphabet[(v >> 12) & 63];
    o += "==";
  } else if (i + 2 == b.size()) {
    uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8);
    o += kAlphabet[(v >> 18) & 63];
    o += kAlphabet[(v >> 12) & 63];
    o += kAlphabet[(v >> 6) & 63];
    o += '=';
  }
  return o;
}

// ---- PNG -------------------------------------------------------------------------------------------

namespace {
void put_u32be(std::vector<uint8_t>& o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<uint8_t>(v >> s));
}
void png_chunk(std::vector<uint8_t>& o, const char type[4], const std::vector<uint8_t>& data) {
  put_u32be(o, static_cast<uint32_t>(data.size()));
  const size_t start = o.size();
  o.insert(o.end(), type, type + 4);
  o.insert(o.end(), data.begin(), data.end());
  uLong crc = crc32(0L, o.data() + start, static_cast<uInt>(o.size() - start));
  put_u32be(o, static_cast<uint32_t>(crc));
}
}  // namespace

std::vector<uint8_t> encode_png_rgb(std::span<const uint8_t> rgb, int width, int height) {
  if (width <= 0 || height <= 0 || rgb.size() < static_cast<size_t>(width) * static_cast<size_t>(height) * 3)
    return {};
  // Rows prefixed by filter type 0 (None).
  std::vector<uint8_t> raw;
  raw.reserve(static_cast<size_t>(height) * (static_cast<size_t>(width) * 3 + 1));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    const uint8_t* row = rgb.data() + static_cast<size_t>(y) * static_cast<size_t>(width) * 3;
    raw.insert(raw.end(), row, row + static_cast<size_t>(width) * 3);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> z(zlen);
  if (compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), 9) != Z_OK) return {};
  z.resize(zlen);
  std::vector<uint8_t> o = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32be(ihdr, static_cast<uint32_t>(width));
  put_u32be(ihdr, static_cast<uint32_t>(height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit, truecolour, deflate, filter 0, no interlace
  png_chunk(o, "IHDR", ihdr);
  png_chunk(o, "IDAT", z);
  png_chunk(o, "IEND", {});
  return o;
}

// ---- FFT and spectrogram ---------------------------------------------------------------------------

void fft_inplace(std::vector<double>& re, std::vector<double>& im) {
  const size_t n = re.size();
  if (n < 2 || (n & (n - 1)) != 0 || im.size() != n) return;
  for (size_t i = 1, j = 0; i < n; ++i) {  // bit reversal
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      std::swap(re[i], re[j]);
      std::swap(im[i], im[j]);
    }
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const double ang = -2 * std::numbers::pi / static_cast<double>(len);
    const double wr = std::cos(ang), wi = std::sin(ang);
    for (size_t i = 0; i < n; i += len) {
      double cr = 1, ci = 0;
      for (size_t k = 0; k < len / 2; ++k) {
        const size_t a = i + k, b = i + k + len / 2;
        const double tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        const double nr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = nr;
      }
    }
  }
}

std::vector<float> spectrogram_db(std::span<const float> x, int bins, int columns) {
  if (bins <= 0 || columns <= 0 || (bins & (bins - 1)) != 0) return {};
  const size_t nfft = static_cast<size_t>(bins) * 2;
  std::vector<float> out(static_cast<size_t>(bins) * static_cast<size_t>(columns), -400.0f);
  std::vector<double> window(nfft), re(nfft), im(nfft);
  for (size_t i = 0; i < nfft; ++i)
    window[i] = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(nfft));
  const size_t span = x.size() > nfft ? x.size() - nfft : 0;
  for (int c = 0; c < columns; ++c) {
    const size_t start = columns > 1 ? span * static_cast<size_t>(c) / static_cast<size_t>(columns - 1) : 0;
    for (size_t i = 0; i < nfft; ++i) {
      const size_t k = start + i;
      const double v = k < x.size() && std::isfinite(x[k]) ? x[k] : 0.0;
      re[i] = v * window[i];
      im[i] = 0;
    }
    fft_inplace(re, im);
    for (int b = 0; b < bins; ++b) {
      const double mag = std::hypot(re[static_cast<size_t>(b)], im[static_cast<size_t>(b)]) / static_cast<double>(nfft);
      out[static_cast<size_t>(b) * static_cast<size_t>(columns) + static_cast<size_t>(c)] =
          static_cast<float>(to_dbfs(mag));
    }
  }
  return out;
}

// ---- page ------------------------------------------------------------------------------------------

namespace {

std::string num(double v, const char* f = "%.4g") {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// A dark-to-bright colour ramp (black, indigo, crimson, orange, pale yellow).
void ramp(double t, uint8_t* rgb) {
  static constexpr double kStops[5][3] = {{0, 0, 4}, {66, 10, 104}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}};
  t = std::clamp(t, 0.0, 1.0) * 4.0;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  for (int k = 0; k < 3; ++k)
    rgb[k] = static_cast<uint8_t>(std::lround(kStops[i][k] + (kStops[i + 1][k] - kStops[i][k]) * f));
}

// Min/max envelope per pixel column, one lane per channel; the vertical scale covers max(1, peak) so
// samples beyond full scale are visible; columns holding NaN/Inf are marked red.
std::string waveform_svg(const CellMedia& m, int width) {
  const int lane = 110;
  const int height = lane * static_cast<int>(m.channels);
  double peak = 1.0;
  for (float v : m.planar)
    if (std::isfinite(v)) peak = std::max(peak, static_cast<double>(std::fabs(v)));
  std::ostringstream s;
  s << "<svg class=\"wave\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" role=\"img\" aria-label=\"waveform\">";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"#10131a\"/>";
  for (int64_t c = 0; c < m.channels; ++c) {
    const double mid = lane * static_cast<double>(c) + lane / 2.0, half = lane / 2.0 - 4;
    auto y = [&](double v) { return mid - v / peak * half; };
    s << "<line x1=\"0\" x2=\"" << width << "\" y1=\"" << num(mid) << "\" y2=\"" << num(mid)
      << "\" stroke=\"#444\"/>";
    if (peak > 1.0)
      for (double fs : {1.0, -1.0})
        s << "<line x1=\"0\" x2=\"" << width << "\" y1=\"" << num(y(fs)) << "\" y2=\"" << num(y(fs))
          << "\" stroke=\"#c33\" stroke-dasharray=\"4 3\"/>";
    std::ostringstream path, bad;
    const float* x = m.planar.data() + c * m.frames;
    for (int px = 0; px < width && m.frames > 0; ++px) {
      const int64_t a = m.frames * px / width, b = std::max(a + 1, m.frames * (px + 1) / width);
      double lo = INFINITY, hi = -INFINITY;
      bool nonfinite = false;
      for (int64_t i = a; i < b && i < m.frames; ++i) {
        if (!std::isfinite(x[i])) {
          nonfinite = true;
          continue;
        }
        lo = std::min(lo, static_cast<double>(x[i]));
        hi = std::max(hi, static_cast<double>(x[i]));
      }
      if (nonfinite)
        bad << "<rect x=\"" << px << "\" y=\"" << lane * c << "\" width=\"1\" height=\"" << lane << "\"/>";
      if (lo <= hi) {
        const double y1 = y(hi), y2 = std::max(y(lo), y1 + 0.8);  // at least a dot for flat stretches
        path << "M" << px << ".5 " << num(y1, "%.2f") << "V" << num(y2, "%.2f");
      }
    }
    s << "<path d=\"" << path.str() << "\" stroke=\"#5ad1ff\" stroke-width=\"1\" fill=\"none\"/>";
    if (!bad.str().empty()) s << "<g fill=\"#ff3030\" opacity=\"0.8\">" << bad.str() << "</g>";
  }
  s << "</svg>";
  return s.str();
}

// Spectrogram of the first channel, 80 dB below its maximum to its maximum, low frequencies at the bottom.
std::string spectrogram_img(const CellMedia& m, int width) {
  const int bins = 256, height = bins;
  std::span<const float> ch(m.planar.data(), static_cast<size_t>(m.frames));
  auto db = spectrogram_db(ch, bins, width);
  if (db.empty()) return "";
  float top = -400.0f;
  for (float v : db) top = std::max(top, v);
  const double floor = top - 80.0;
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  for (int yy = 0; yy < height; ++yy) {
    const int bin = bins - 1 - yy;
    for (int xx = 0; xx < width; ++xx) {
      const double v = db[static_cast<size_t>(bin) * static_cast<size_t>(width) + static_cast<size_t>(xx)];
      ramp(top > -400.0f ? (v - floor) / 80.0 : 0.0, &rgb[(static_cast<size_t>(yy) * width + xx) * 3]);
    }
  }
  auto png = encode_png_rgb(rgb, width, height);
  std::ostringstream s;
  s << "<img class=\"spec\" width=\"" << width << "\" height=\"" << height << "\" alt=\"spectrogram 0 to "
    << m.sample_rate / 2 << " Hz, 80 dB range\" src=\"data:image/png;base64," << base64(png) << "\"/>";
  return s.str();
}

std::string audio_player(const CellMedia& m, const HtmlOptions& o, std::string& note) {
  int64_t frames = m.frames;
  const int64_t cap = static_cast<int64_t>(o.max_player_seconds * m.sample_rate);
  if (cap > 0 && frames > cap) {
    frames = cap;
    note = "the player holds the first " + num(o.max_player_seconds) + " s";
  }
  std::vector<float> planar(static_cast<size_t>(m.channels * frames));
  for (int64_t c = 0; c < m.channels; ++c)
    std::copy_n(m.planar.begin() + c * m.frames, frames, planar.begin() + c * frames);
  std::vector<uint8_t> wav;
  std::string err;
  if (!wav_float_bytes(planar, m.channels, frames, m.sample_rate, wav, err)) {
    note = "no player: " + err;
    return "";
  }
  return "<audio controls=\"controls\" preload=\"none\" src=\"data:audio/wav;base64," + base64(wav) + "\"></audio>";
}

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;background:#fff;margin:4px 0}td,th{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eceff4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:700;color:#fff}
.pass{background:#1f8a3b}.fail,.error{background:#c62828}.unsafe{background:#8e24aa}.usage{background:#6d4c41}.skip{background:#78808c}
.st{color:#fff;padding:1px 6px;border-radius:3px}
.cell{background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:12px;margin:14px 0}
.sev-error{color:#c62828;font-weight:600}.sev-warning{color:#b26a00;font-weight:600}.sev-note{color:#455a64}
code{font-family:ui-monospace,monospace}.pic{display:block;margin:8px 0;max-width:100%}
.cap{color:#5a6270;font-size:12px}
)";

}  // namespace

std::string render_html(const Report& r, const std::vector<CellMedia>& media, const HtmlOptions& o) {
  const Verdict v = r.verdict();
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>mgcheck " << html_escape(r.command)
    << " — " << html_escape(r.target) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  h << "<h1>mgcheck " << html_escape(r.command) << " report</h1>\n";
  h << "<p><span class=\"verdict " << verdict_name(v) << "\">verdict: " << verdict_name(v) << " (exit "
    << exit_code_of(v) << ")</span></p>\n";
  h << "<table>\n<tr><th>target</th><td><code>" << html_escape(r.target) << "</code></td></tr>\n";
  h << "<tr><th>tool</th><td>mgcheck " << MGCHECK_VERSION << "</td></tr>\n";
  for (auto it = r.environment.begin(); it != r.environment.end(); ++it)
    h << "<tr><th>" << html_escape(it.key()) << "</th><td>"
      << html_escape(it.value().is_string() ? it.value().get<std::string>() : it.value().dump()) << "</td></tr>\n";
  h << "</table>\n";

  h << "<h2>Findings (" << r.findings.size() << ")</h2>\n";
  if (r.findings.size() == 0) {
    h << "<p>none</p>\n";
  } else {
    h << "<table>\n<tr><th>severity</th><th>code</th><th>where</th><th>message</th><th>hint</th></tr>\n";
    for (const auto& f : r.findings.items()) {
      std::string where = f.file + (f.offset ? "@" + std::to_string(*f.offset) : "") +
                          (f.name.empty() ? "" : " [" + f.name + "]");
      const char* sev = format::severity_name(f.severity);
      h << "<tr><td class=\"sev-" << sev << "\">" << sev << "</td><td><code>" << html_escape(f.code)
        << "</code></td><td><code>" << html_escape(where) << "</code></td><td>" << html_escape(f.message)
        << "</td><td>" << html_escape(f.hint) << "</td></tr>\n";
    }
    h << "</table>\n";
  }

  if (!r.cells.empty()) {
    h << "<h2>Matrix</h2>\n<table>\n<tr><th>cell</th><th>status</th><th>time s</th><th>steps/s</th><th>RTF</th>"
         "<th>codes</th><th>NaN</th><th>Inf</th><th>peak</th><th>RMS dBFS</th><th>silent run s</th>"
         "<th>clip</th><th>DC</th><th>stuck</th></tr>\n";
    for (size_t i = 0; i < r.cells.size(); ++i) {
      const auto& c = r.cells[i];
      std::string shape;
      for (size_t k = 0; k < c.codes_shape.size(); ++k) shape += (k ? "×" : "") + std::to_string(c.codes_shape[k]);
      h << "<tr><td><a href=\"#cell-" << i << "\">" << html_escape(c.device + "/" + c.precision + "/" + c.config)
        << "</a></td><td><span class=\"st " << html_escape(c.status) << "\">" << html_escape(c.status)
        << "</span></td><td class=\"n\">" << num(c.seconds, "%.3f") << "</td><td class=\"n\">"
        << num(c.steps_per_s, "%.1f") << "</td><td class=\"n\">" << num(c.rtf, "%.3f") << "</td><td>" << shape
        << "</td>";
      if (c.audio) {
        const auto& a = *c.audio;
        h << "<td class=\"n\">" << a.nan << "</td><td class=\"n\">" << a.inf << "</td><td class=\"n\">"
          << num(a.peak) << "</td><td class=\"n\">" << num(a.rms_dbfs, "%.1f") << "</td><td class=\"n\">"
          << num(a.silent_run_s, "%.3f") << "</td><td class=\"n\">" << num(a.clip_fraction) << "</td><td class=\"n\">"
          << num(a.dc) << "</td><td class=\"n\">" << num(a.stuck_fraction, "%.2f") << "</td>";
      } else {
        h << "<td colspan=\"8\" class=\"cap\">no audio</td>";
      }
      h << "</tr>\n";
    }
    h << "</table>\n";
  }

  if (!r.reference.empty()) {
    h << "<h2>Reference comparison</h2>\n<table>\n<tr><th>stage</th><th>status</th><th>max |diff|</th>"
         "<th>tolerance</th><th>first differing index</th><th>note</th></tr>\n";
    for (const auto& s : r.reference) {
      std::string idx;
      for (size_t k = 0; k < s.first_diff_index.size(); ++k) idx += (k ? "," : "") + std::to_string(s.first_diff_index[k]);
      h << "<tr><td><code>" << html_escape(s.stage) << "</code></td><td><span class=\"st "
        << (s.status == "info" ? "skip" : html_escape(s.status)) << "\">" << html_escape(s.status)
        << "</span></td><td class=\"n\">" << num(s.max_abs) << "</td><td class=\"n\">" << num(s.tolerance)
        << "</td><td>" << (idx.empty() ? "" : "[" + idx + "]") << "</td><td>" << html_escape(s.note) << "</td></tr>\n";
    }
    h << "</table>\n";
  }

  if (!r.cells.empty()) h << "<h2>Cells</h2>\n";
  for (size_t i = 0; i < r.cells.size(); ++i) {
    const auto& c = r.cells[i];
    h << "<section class=\"cell\" id=\"cell-" << i << "\">\n<h3>" << html_escape(c.device + " / " + c.precision + " / " + c.config)
      << " <span class=\"st " << html_escape(c.status) << "\">" << html_escape(c.status) << "</span></h3>\n";
    if (!c.reason.empty()) h << "<p>" << html_escape(c.reason) << "</p>\n";
    if (!c.extra.empty()) h << "<p class=\"cap\">details: <code>" << html_escape(c.extra.dump()) << "</code></p>\n";
    for (const auto& m : media) {
      if (m.cell != i || m.channels <= 0 || m.frames <= 0 || m.sample_rate <= 0 ||
          m.planar.size() < static_cast<size_t>(m.channels * m.frames))
        continue;
      const int w = std::max(64, o.picture_width);
      h << "<p class=\"cap\">item 0: " << m.channels << " channel(s), " << m.frames << " samples at " << m.sample_rate
        << " Hz (" << num(static_cast<double>(m.frames) / m.sample_rate, "%.3f")
        << " s); waveform of the raw decoder output (red: NaN/Inf; dashed: full scale)</p>\n";
      h << "<div class=\"pic\">" << waveform_svg(m, w) << "</div>\n";
      h << "<div class=\"pic\">" << spectrogram_img(m, w) << "</div>\n";
      std::string note;
      std::string player = audio_player(m, o, note);
      h << player << (note.empty() ? "" : "<p class=\"cap\">" + html_escape(note) + "</p>") << "\n";
    }
    h << "</section>\n";
  }
  h << "</body>\n</html>\n";
  return h.str();
}

}  // namespace mgcheck::harness

// bench/make-model: writes a full-size MusicGen export directory (state_dict.bin +
// compression_state_dict.bin) with random but sane weights, for benchmarks and scaling runs.
//
// The xp.cfg texts are the bundled a_small_like fixture's (a real AudioCraft composition), with the
// model sizes substituted; tensor names and shapes come from mgcheck's own inventory of the typed config,
// so the output passes `mgcheck quick`. Everything is deterministic for a given --seed.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/configs.h"
#include "mgcheck/format/export.h"
#include "mgcheck/format/inventory.h"
#include "mgcheck/format/writer.h"
#include "mgcheck/format/xpcfg.h"

namespace fs = std::filesystem;
using namespace mgcheck::format;

namespace {

struct Shape {
  const char* name;
  int64_t dim, heads, layers;
};
// musicgen-small / musicgen-medium (audiocraft/config/model/lm/model_scale/{small,medium}.yaml).
constexpr Shape kSmall{"small", 1024, 16, 24};
constexpr Shape kMedium{"medium", 1536, 24, 48};

// splitmix64: tiny, fast and deterministic across platforms.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Approximately N(0, 1): Irwin–Hall sum of four uniforms, rescaled (cheap; tails are bounded, which
  // suits weights).
  float normal() {
    uint64_t r = next();
    float sum = 0.f;
    for (int i = 0; i < 4; ++i) sum += static_cast<float>((r >> (16 * i)) & 0xFFFF) * (1.f / 65536.f);
    return (sum - 2.f) * 1.7320508f;
  }
};

// IEEE binary16 from binary32, round to nearest even (normals, subnormals, overflow to inf).
uint16_t to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xFF;
  uint32_t mant = x & 0x7FFFFF;
  if (exp == 0xFF) return static_cast<uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0u));
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 0x1F) return static_cast<uint16_t>(sign | 0x7C00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1u))) ++half;  // may carry into the exponent: correct
  return static_cast<uint16_t>(half);
}

// Replaces `key: value` of the two-space-indented child of top-level `section` in YAML text.
bool set_field(std::string& text, const std::string& section, const std::string& key, const std::string& value) {
  size_t pos = 0;
  const std::string head = section + ":\n";
  if (text.compare(0, head.size(), head) != 0) {
    pos = text.find("\n" + head);
    if (pos == std::string::npos) return false;
    ++pos;
  }
  pos += head.size();
  while (pos < text.size() && text.compare(pos, 2, "  ") == 0) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string prefix = "  " + key + ":";
    if (text.compare(pos, prefix.size(), prefix) == 0) {
      text.replace(pos, eol - pos, prefix + " " + value);
      return true;
    }
    pos = eol + 1;
  }
  return false;
}

std::optional<std::string> template_cfg(const std::string& path) {
  auto src = MappedFile::open(path);
  if (!src) return std::nullopt;
  Findings findings;
  auto ck = read_checkpoint(**src, Limits{}, ReadOptions{}, findings);
  if (!ck) return std::nullopt;
  ValueId cfg = ck->pickle.arena.dict_get(ck->pickle.root, "xp.cfg");
  if (!ck->pickle.arena.is_string(cfg)) return std::nullopt;
  return ck->pickle.arena[cfg].s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A pool of N(0, sigma) values that large tensors take random slices of: generating every element of a
// multi-GB model would dominate the run, and the checks do not care that slices repeat.
class Pool {
 public:
  Pool(DType dtype, uint64_t elements, float sigma, Rng& rng) : dtype_(dtype), n_(elements) {
    bytes_.resize(elements * itemsize(dtype));
    for (uint64_t i = 0; i < elements; ++i) put(i, rng.normal() * sigma);
  }
  std::span<const uint8_t> slice(uint64_t elements, Rng& rng) const {
    uint64_t max_start = n_ - elements;
    uint64_t start = max_start ? rng.next() % (max_start + 1) : 0;
    return std::span<const uint8_t>(bytes_).subspan(start * itemsize(dtype_), elements * itemsize(dtype_));
  }
  uint64_t elements() const { return n_; }

 private:
  void put(uint64_t i, float v) {
    if (dtype_ == DType::float16) {
      uint16_t h = to_half(v);
      std::memcpy(&bytes_[i * 2], &h, 2);
    } else {
      std::memcpy(&bytes_[i * 4], &v, 4);
    }
  }
  DType dtype_;
  uint64_t n_;
  std::vector<uint8_t> bytes_;
};

std::vector<uint8_t> filled(DType dtype, uint64_t n, float value) {
  std::vector<uint8_t> b(n * itemsize(dtype));
  for (uint64_t i = 0; i < n; ++i) {
    if (dtype == DType::float16) {
      uint16_t h = to_half(value);
      std::memcpy(&b[i * 2], &h, 2);
    } else {
      std::memcpy(&b[i * 4], &value, 4);
    }
  }
  return b;
}

float read_value(DType dtype, const uint8_t* p) {
  if (dtype == DType::float32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  // binary16 → binary32 (normals and zero; the pool's tiny subnormals read as 0, fine for a norm)
  uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0) return 0.f;
  uint32_t x = (static_cast<uint32_t>(h & 0x8000) << 16) | ((e - 15 + 127) << 23) | (m << 13);
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// One state dict: names/shapes from the inventory, values by role.
WDict make_state(const std::vector<ExpectedTensor>& expected, DType dtype, const Pool& pool, Rng& rng,
                 uint64_t& total_bytes) {
  WDict state;
  std::map<std::string, WTensor> weight_v;  // weight-norm v tensors, to derive g
  for (const auto& e : expected) {
    uint64_t n = 1;
    for (int64_t d : e.shape) n *= static_cast<uint64_t>(d < 0 ? 1 : d);
    std::vector<int64_t> sizes = e.shape;
    for (auto& d : sizes) d = d < 0 ? 1 : d;
    const std::string& k = e.name;
    WTensor t;
    bool is_norm = k.find("norm") != std::string::npos && k.find("weight_") == std::string::npos &&
                   sizes.size() == 1;
    if (ends_with(k, "._codebook.inited")) {
      t = make_tensor(dtype, sizes, filled(dtype, n, 1.f));
    } else if (ends_with(k, "._codebook.cluster_size")) {
      t = make_tensor(dtype, sizes, filled(dtype, n, 1.f));
    } else if (is_norm && ends_with(k, ".weight")) {
      t = make_tensor(dtype, sizes, filled(dtype, n, 1.f));  // LayerNorm weight 1
    } else if (ends_with(k, ".weight_g")) {
      t = make_tensor(dtype, sizes, filled(dtype, n, 1.f));  // placeholder: set from v below
    } else if (n <= pool.elements()) {
      // Weights, biases (LSTM bias_ih_l0 too) and codebooks: N(0, 0.02) slices. Biases are not zero on
      // purpose: an all-zero tensor is a `quick` warning, and real trained biases are not zero.
      t.dtype = dtype;
      t.sizes = sizes;
      t.storage = pool.slice(n, rng);
    } else {
      std::fprintf(stderr, "make-model: tensor %s (%llu elements) larger than the pool\n", k.c_str(),
                   static_cast<unsigned long long>(n));
      std::exit(2);
    }
    if (ends_with(k, ".weight_v")) weight_v[k] = t;
    total_bytes += n * itemsize(dtype);
    state.emplace_back(k, std::move(t));
  }
  // g = ‖v‖ over every dim but 0 (torch weight_norm, dim=0), so g·v/‖v‖ == v: the pair is consistent.
  // Done after the first pass because weight_g precedes weight_v in the inventory.
  for (auto& [k, v] : state) {
    if (!ends_with(k, ".weight_g")) continue;
    auto& t = std::get<WTensor>(v.v);
    const std::string vname = k.substr(0, k.size() - 1) + "v";
    auto it = weight_v.find(vname);
    if (it == weight_v.end()) continue;
    uint64_t n = t.storage.size() / itemsize(dtype);
    const auto& vt = it->second;
    uint64_t per = (vt.storage.size() / itemsize(dtype)) / n;
    std::vector<uint8_t> b(n * itemsize(dtype));
    for (uint64_t i = 0; i < n; ++i) {
      double s = 0;
      for (uint64_t j = 0; j < per; ++j) {
        float x = read_value(dtype, vt.storage.data() + (i * per + j) * itemsize(dtype));
        s += double(x) * x;
      }
      float g = static_cast<float>(std::sqrt(s));
      if (dtype == DType::float16) {
        uint16_t h = to_half(g);
        std::memcpy(&b[i * 2], &h, 2);
      } else {
        std::memcpy(&b[i * 4], &g, 4);
      }
    }
    t = make_tensor(dtype, t.sizes, std::move(b));
  }
  return state;
}

WValue export_root(WDict state, const std::string& cfg) {
  WDict root;
  root.emplace_back("best_state", WValue(std::move(state)));
  root.emplace_back("xp.cfg", WValue(cfg));
  root.emplace_back("version", WValue(std::string(kExportVersion)));
  root.emplace_back("exported", WValue(true));
  return WValue(std::move(root));
}

int usage() {
  std::fprintf(stderr,
               "usage: make-model [--size small|medium] [--layers N] [--dim D --heads H] [--seed S]\n"
               "                  [--out DIR] [--template DIR] [--lm-only] [--force]\n"
               "Writes DIR/state_dict.bin (float16 LM) and DIR/compression_state_dict.bin (float32 EnCodec 32 kHz).\n"
               "Default DIR: <build dir>/bench-models/musicgen-<size>.\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Shape shape = kSmall;
  std::optional<int64_t> layers, dim, heads;
  uint64_t seed = 1234;
  std::string out, tmpl = std::string(MGCHECK_SOURCE_DIR) + "/corpus/audiocraft-tiny/a_small_like";
  bool lm_only = false, force = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(usage());
      return argv[++i];
    };
    if (a == "--size") {
      std::string s = next();
      if (s == "small") shape = kSmall;
      else if (s == "medium") shape = kMedium;
      else return usage();
    } else if (a == "--layers") layers = std::stoll(next());
    else if (a == "--dim") dim = std::stoll(next());
    else if (a == "--heads") heads = std::stoll(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--out") out = next();
    else if (a == "--template") tmpl = next();
    else if (a == "--lm-only") lm_only = true;
    else if (a == "--force") force = true;
    else return usage();
  }
  if (layers) shape.layers = *layers;
  if (dim) shape.dim = *dim;
  if (heads) shape.heads = *heads;
  if (out.empty()) out = std::string(MGCHECK_BENCH_MODELS) + "/musicgen-" + shape.name;
  // Never write into the corpus: it holds reference fixtures only.
  std::error_code ec;
  fs::path abs_out = fs::weakly_canonical(fs::absolute(out), ec);
  fs::path corpus = fs::weakly_canonical(fs::path(MGCHECK_SOURCE_DIR) / "corpus", ec);
  if (abs_out.string().rfind(corpus.string(), 0) == 0) {
    std::fprintf(stderr, "make-model: refusing to write into %s\n", corpus.c_str());
    return 2;
  }
  fs::create_directories(out, ec);

  auto lm_text = template_cfg(tmpl + "/state_dict.bin");
  auto comp_text = template_cfg(tmpl + "/compression_state_dict.bin");
  if (!lm_text || !comp_text) {
    std::fprintf(stderr, "make-model: cannot read the xp.cfg templates under %s\n", tmpl.c_str());
    return 1;
  }
  // The released musicgen-small / 32 kHz EnCodec sizes (musicgen-model.md §1).
  bool ok = set_field(*lm_text, "transformer_lm", "dim", std::to_string(shape.dim)) &&
            set_field(*lm_text, "transformer_lm", "num_heads", std::to_string(shape.heads)) &&
            set_field(*lm_text, "transformer_lm", "num_layers", std::to_string(shape.layers)) &&
            set_field(*lm_text, "transformer_lm", "n_q", "4") &&
            set_field(*lm_text, "transformer_lm", "card", "2048") &&
            set_field(*comp_text, "seanet", "dimension", "128") &&
            set_field(*comp_text, "seanet", "n_filters", "64") &&
            set_field(*comp_text, "rvq", "n_q", "4") && set_field(*comp_text, "rvq", "bins", "2048");
  if (!ok) {
    std::fprintf(stderr, "make-model: the template xp.cfg lacks an expected field\n");
    return 1;
  }
  Findings findings;
  auto lm_cfg_doc = XpCfg::parse(*lm_text, "state_dict.bin");
  auto comp_cfg_doc = XpCfg::parse(*comp_text, "compression_state_dict.bin");
  if (!lm_cfg_doc || !comp_cfg_doc) {
    std::fprintf(stderr, "make-model: substituted xp.cfg does not parse\n");
    return 1;
  }
  auto lm_cfg = lm_config_from_xpcfg(*lm_cfg_doc, findings);
  auto comp_cfg = compression_config_from_xpcfg(*comp_cfg_doc, findings);
  if (!lm_cfg || !comp_cfg) {
    std::fprintf(stderr, "make-model: substituted xp.cfg gives no typed config: %s\n",
                 (lm_cfg ? comp_cfg.error() : lm_cfg.error()).message.c_str());
    return 1;
  }

  Rng rng{seed};
  WriteOptions wo;
  wo.overwrite = force;
  {
    auto expected = expected_lm_tensors(*lm_cfg);
    uint64_t largest = 0;
    for (const auto& e : expected) largest = std::max(largest, count_elements({e}));
    Pool pool(DType::float16, std::max<uint64_t>(largest * 4, 64ull << 20), 0.02f, rng);
    uint64_t bytes = 0;
    WDict state = make_state(expected, DType::float16, pool, rng, bytes);
    std::string path = out + "/state_dict.bin";
    auto st = write_torch_save_file(path, export_root(std::move(state), *lm_text), wo);
    if (!st) {
      std::fprintf(stderr, "make-model: %s: %s\n", path.c_str(), st.error().message.c_str());
      return 1;
    }
    std::printf("%s: %zu tensors, %.3f GB of float16 weights (dim %lld, %lld layers, %lld heads)\n", path.c_str(),
                expected.size(), static_cast<double>(bytes) / 1e9, static_cast<long long>(shape.dim),
                static_cast<long long>(shape.layers), static_cast<long long>(shape.heads));
  }
  if (!lm_only) {
    auto expected = expected_compression_tensors(*comp_cfg);
    uint64_t total = count_elements(expected);
    Pool pool(DType::float32, total, 0.02f, rng);
    uint64_t bytes = 0;
    WDict state = make_state(expected, DType::float32, pool, rng, bytes);
    std::string path = out + "/compression_state_dict.bin";
    auto st = write_torch_save_file(path, export_root(std::move(state), *comp_text), wo);
    if (!st) {
      std::fprintf(stderr, "make-model: %s: %s\n", path.c_str(), st.error().message.c_str());
      return 1;
    }
    std::printf("%s: %zu tensors, %.3f GB of float32 weights\n", path.c_str(), expected.size(),
                static_cast<double>(bytes) / 1e9);
  }
  return 0;
}

// Fuzz target: xp.cfg YAML parsing, lazy interpolation, and the typed LM / compression derivations with
// their cross-file consistency rules (the input is one YAML document; both derivations read it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mgcheck/format/configs.h"
#include "mgcheck/format/xpcfg.h"

namespace {

// Reads every key of every mapping down to a small depth, so interpolations anywhere get resolved.
void walk(const mgcheck::format::XpCfg& cfg, const std::string& path, int depth,
          mgcheck::format::Findings& findings, int& budget) {
  if (depth > 4) return;
  for (const auto& key : cfg.keys(path, findings)) {
    if (--budget < 0) return;
    std::string child = path.empty() ? key : path + "." + key;
    (void)cfg.get(child, findings);
    walk(cfg, child, depth + 1, findings, budget);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mgcheck::format;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = XpCfg::parse(text, "fuzz.yaml");
  if (!cfg) return 0;
  Findings findings;
  int budget = 2000;
  walk(*cfg, "", 0, findings, budget);
  (void)cfg->get_int_list("codebooks_pattern.delay.delays", findings);
  (void)cfg->get_string_list("fuser.cross", findings);
  auto lm = lm_config_from_xpcfg(*cfg, findings);
  auto comp = compression_config_from_xpcfg(*cfg, findings);
  if (lm && comp) check_consistency(*lm, *comp, findings, "lm", "compression");
  // The loaders' edits must work on any tree.
  (void)cfg->set_scalar("device", "cpu");
  (void)cfg->erase("conditioners.self_wav.chroma_stem.cache_path");
  return 0;
}

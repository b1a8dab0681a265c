// mirrors audiocraft/models/loaders.py (what load_lm_model / load_compression_model read) and
// audiocraft/utils/export.py (what the exporters write).
#include "mgcheck/format/schema.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace mgcheck::format {
namespace fs = std::filesystem;

namespace {

const std::set<std::string>& export_keys() {
  static const std::set<std::string> k = {"best_state", "xp.cfg", "version", "exported"};
  return k;
}
const std::set<std::string>& pretrained_keys() {
  static const std::set<std::string> k = {"pretrained", "exported", "version"};
  return k;
}

// Keys flashy / AudioCraft solvers put at the top of a raw training checkpoint (§1.3).
const std::set<std::string>& training_keys() {
  static const std::set<std::string> k = {"history", "xp.sig", "model", "optimizer", "lr_scheduler",
                                          "ema", "scaler", "fsdp_best_state", "compression_model"};
  return k;
}

class Checker {
 public:
  Checker(const Checkpoint& ck, Findings& f, FileRole role) : ck_(ck), a_(ck.pickle.arena), f_(f) {
    info_.role = role;
    info_.root = ck.pickle.root;
  }

  const Value* get(ValueId id) const { return id != kNoValue && id < a_.size() ? &a_[id] : nullptr; }

  Finding at(Finding f, ValueId id, const std::string& name = "") const {
    f.file = ck_.file;
    if (const Value* v = get(id)) f.offset = v->offset;
    f.name = name;
    return f;
  }
  void error(const std::string& code, ValueId id, const std::string& name, const std::string& msg,
             const std::string& hint) {
    f_.push(at(make_error(code, msg, hint), id, name));
  }

  std::string file_label() const {
    return info_.role == FileRole::lm ? "the LM file" : "the compression model file";
  }

  // The string keys of the root dict, in order.
  std::vector<std::string> root_keys() const {
    std::vector<std::string> keys;
    const Value* r = get(info_.root);
    if (r == nullptr || r->kind != ValueKind::dict) return keys;
    for (size_t i = 0; i + 1 < r->items.size(); i += 2)
      if (const Value* k = get(r->items[i]); k && k->kind == ValueKind::string) keys.push_back(k->s);
    return keys;
  }

  bool root_is_dict() {
    const Value* r = get(info_.root);
    if (r != nullptr && r->kind == ValueKind::dict) return true;
    error("MG-SCHEMA-ROOT-NOT-DICT", info_.root, "",
          std::string("the top-level object of ") + file_label() + " is " +
              (r ? value_kind_name(r->kind) : "missing") + ", not a dict",
          "AudioCraft's exporters save a dict {best_state, xp.cfg, version, exported}");
    info_.kind = ExportKind::invalid;
    return false;
  }

  // The state dict: a dict (plain or OrderedDict) of str → tensor.
  void check_best_state() {
    info_.best_state = a_.dict_get(info_.root, "best_state");
    if (info_.best_state == kNoValue) {
      error("MG-SCHEMA-NO-BEST-STATE", info_.root, "best_state",
            file_label() + " has no 'best_state' key (AudioCraft raises KeyError: 'best_state')",
            "export the model with AudioCraft's export_lm / export_encodec (or `mgcheck export`)");
      return;
    }
    const Value& bs = a_[info_.best_state];
    if (bs.kind != ValueKind::dict) {
      error("MG-SCHEMA-BEST-STATE-TYPE", info_.best_state, "best_state",
            std::string("'best_state' is ") + value_kind_name(bs.kind) + ", not a dict of tensors",
            "best_state must be the module's state dict {name: Tensor}");
      return;
    }
    info_.best_state_prefix = "best_state/";
    bool ok = true;
    size_t bad_keys = 0, bad_values = 0;
    for (size_t i = 0; i + 1 < bs.items.size(); i += 2) {
      const Value& k = a_[bs.items[i]];
      const Value& v = a_[bs.items[i + 1]];
      if (k.kind != ValueKind::string) {
        ok = false;
        if (++bad_keys <= 20)
          error("MG-SCHEMA-BEST-STATE-KEY", bs.items[i], "best_state",
                std::string("best_state has a key of type ") + value_kind_name(k.kind) + ", not str",
                "state dict keys are parameter names (str)");
        continue;
      }
      if (v.kind != ValueKind::tensor) {
        ok = false;
        if (++bad_values <= 20)
          error("MG-SCHEMA-BEST-STATE-VALUE", bs.items[i + 1], "best_state/" + k.s,
                "best_state['" + k.s + "'] is " + value_kind_name(v.kind) + ", not a tensor",
                v.kind == ValueKind::dict ? "a nested dict here usually means a training checkpoint's "
                                            "{'model': {...}}: export it first"
                                          : "load_state_dict accepts only tensors as values");
      }
    }
    info_.best_state_ok = ok;
  }

  void check_xp_cfg() {
    ValueId c = a_.dict_get(info_.root, "xp.cfg");
    if (c == kNoValue) {
      error("MG-SCHEMA-NO-XP-CFG", info_.root, "xp.cfg",
            file_label() + " has no 'xp.cfg' key (AudioCraft raises KeyError: 'xp.cfg')",
            "the export must carry the training config as YAML text under 'xp.cfg'");
      return;
    }
    const Value& v = a_[c];
    if (v.kind != ValueKind::string) {
      error("MG-SCHEMA-XP-CFG-TYPE", c, "xp.cfg",
            std::string("'xp.cfg' is ") + value_kind_name(v.kind) + ", not a str of YAML text",
            "OmegaConf.create(pkg['xp.cfg']) needs the YAML text that OmegaConf.to_yaml writes");
      return;
    }
    info_.xp_cfg = v.s;
  }

  void check_version_exported(bool note_if_absent) {
    ValueId ver = a_.dict_get(info_.root, "version");
    ValueId exp = a_.dict_get(info_.root, "exported");
    if (ver != kNoValue) {
      if (a_[ver].kind == ValueKind::string) info_.version = a_[ver].s;
      else
        error("MG-SCHEMA-VERSION-TYPE", ver, "version",
              std::string("'version' is ") + value_kind_name(a_[ver].kind) + ", not a str",
              "exporters write audiocraft.__version__ (e.g. '1.4.0a2')");
    }
    if (exp != kNoValue) {
      const Value& e = a_[exp];
      if (e.kind == ValueKind::boolean) info_.exported = e.i != 0;
      if (e.kind != ValueKind::boolean || e.i == 0)
        error("MG-SCHEMA-EXPORTED", exp, "exported",
              std::string("'exported' is ") +
                  (e.kind == ValueKind::boolean ? "False" : std::string(value_kind_name(e.kind))) +
                  ", not True",
              "AudioCraft's exporters always write exported=True; the file was edited or made by hand");
    }
    if (ver == kNoValue && exp == kNoValue && note_if_absent) {
      info_.first_release = true;
      Finding n = make_note("MG-SCHEMA-FIRST-RELEASE",
                            file_label() + " has no 'version' / 'exported': the first-release (June 2023) "
                            "export layout, which AudioCraft still loads",
                            "nothing to do; re-exporting with a current AudioCraft adds both keys");
      n.file = ck_.file;
      f_.push(std::move(n));
    }
  }

  void check_unexpected(const std::set<std::string>& allowed) {
    for (const auto& k : root_keys()) {
      if (allowed.count(k)) continue;
      Finding w = make_warning("MG-SCHEMA-UNEXPECTED-KEY",
                               "unexpected top-level key '" + k + "' in " + file_label() + " (loaders ignore it)",
                               "AudioCraft's exporters write only best_state, xp.cfg, version, exported");
      w.file = ck_.file;
      if (ValueId v = a_.dict_get(info_.root, k); get(v)) w.offset = a_[v].offset;
      w.name = k;
      f_.push(std::move(w));
    }
  }

  // A best_state that holds the other model: an EnCodec in state_dict.bin or an LM in the compression
  // file (pitfall §9.2: "Missing key compression_model").
  void check_model_family() {
    if (!info_.best_state_ok) return;
    const Value& bs = a_[info_.best_state];
    size_t lm = 0, codec = 0;
    for (size_t i = 0; i + 1 < bs.items.size(); i += 2) {
      const std::string& k = a_[bs.items[i]].s;
      if (k.rfind("emb.", 0) == 0 || k.rfind("linears.", 0) == 0 || k.rfind("transformer.", 0) == 0 ||
          k.rfind("condition_provider.", 0) == 0)
        ++lm;
      if (k.rfind("encoder.model.", 0) == 0 || k.rfind("decoder.model.", 0) == 0 || k.rfind("quantizer.", 0) == 0)
        ++codec;
    }
    if (info_.role == FileRole::lm && codec > 0 && lm == 0)
      error("MG-SCHEMA-WRONG-MODEL", info_.best_state, "best_state",
            "state_dict.bin holds an EnCodec state dict (encoder/decoder/quantizer keys), not a MusicGen LM",
            "state_dict.bin must be export_lm's output; the EnCodec belongs in compression_state_dict.bin");
    if (info_.role == FileRole::compression && lm > 0 && codec == 0)
      error("MG-SCHEMA-WRONG-MODEL", info_.best_state, "best_state",
            "compression_state_dict.bin holds a language-model state dict (emb/transformer keys), not EnCodec "
            "(AudioCraft fails with ConfigAttributeError: Missing key compression_model)",
            "write the compression file with export_encodec or export_pretrained_compression_model");
  }

  void refuse_training_checkpoint() {
    info_.kind = ExportKind::training_checkpoint;
    // LM or EnCodec? Look at the weights' names under model / best_state.model.
    ValueId model = a_.dict_get(info_.root, "model");
    if (!a_.is_dict(model)) model = a_.dict_get(a_.dict_get(info_.root, "best_state"), "model");
    if (!a_.is_dict(model)) model = a_.dict_get(a_.dict_get(info_.root, "fsdp_best_state"), "model");
    bool codec = false;
    if (a_.is_dict(model)) {
      const Value& m = a_[model];
      for (size_t i = 0; i < m.items.size(); i += 2)
        if (const Value* k = get(m.items[i]); k && k->kind == ValueKind::string &&
                                              (k->s.rfind("encoder.", 0) == 0 || k->s.rfind("quantizer.", 0) == 0))
          codec = true;
    } else {
      codec = info_.role == FileRole::compression;
    }
    info_.training_kind = codec ? "encodec" : "lm";
    std::string keys;
    for (const auto& k : root_keys()) keys += (keys.empty() ? "" : ", ") + k;
    Finding e = make_error("MG-SCHEMA-TRAINING-CHECKPOINT",
                           file_label() + " is a raw AudioCraft training checkpoint (top-level keys: " + keys +
                               "; xp.cfg is a pickled omegaconf object), not an export: AudioCraft fails with "
                               "\"Unexpected key(s) in state_dict\" or an unpickling error",
                           "export it first: `mgcheck export " + info_.training_kind + " " + ck_.file +
                               " OUTDIR` (AudioCraft: export_" + info_.training_kind + ")");
    e.file = ck_.file;
    e.offset = 0;
    f_.push(std::move(e));
  }

  ExportInfo run_export(bool allow_pretrained, const Env* env) {
    if (!root_is_dict()) return info_;
    if (looks_like_training_checkpoint(ck_)) {
      refuse_training_checkpoint();
      return info_;
    }
    if (allow_pretrained && a_.dict_get(info_.root, "pretrained") != kNoValue) return run_pretrained(*env);
    info_.kind = info_.role == FileRole::lm ? ExportKind::lm_export : ExportKind::compression_export;
    check_best_state();
    check_xp_cfg();
    check_version_exported(true);
    check_unexpected(export_keys());
    check_model_family();
    return info_;
  }

  // mirrors audiocraft/models/loaders.py (load_compression_model: 'pretrained' in pkg)
  ExportInfo run_pretrained(const Env& env) {
    info_.kind = ExportKind::pretrained_reference;
    ValueId p = a_.dict_get(info_.root, "pretrained");
    if (a_[p].kind != ValueKind::string) {
      error("MG-SCHEMA-PRETRAINED-TYPE", p, "pretrained",
            std::string("'pretrained' is ") + value_kind_name(a_[p].kind) + ", not a str",
            "export_pretrained_compression_model writes the model name as a str");
      return info_;
    }
    info_.pretrained = a_[p].s;
    check_version_exported(false);  // the first-release note is about LM/EnCodec exports only
    if (a_.dict_get(info_.root, "best_state") != kNoValue || a_.dict_get(info_.root, "xp.cfg") != kNoValue) {
      Finding w = make_warning("MG-SCHEMA-PRETRAINED-IGNORED-STATE",
                               "the file has 'pretrained' and also best_state / xp.cfg: AudioCraft follows the "
                               "reference and ignores the weights stored here",
                               "keep either the reference or a full EnCodec export, not both");
      w.file = ck_.file;
      f_.push(std::move(w));
    }
    std::set<std::string> allowed = pretrained_keys();
    allowed.insert("best_state");
    allowed.insert("xp.cfg");
    check_unexpected(allowed);
    info_.pretrained_resolution = resolve_pretrained(*info_.pretrained, env);
    report_pretrained(*info_.pretrained_resolution, p);
    return info_;
  }

  void report_pretrained(const PretrainedResolution& r, ValueId p) {
    std::string looked;
    for (const auto& l : r.looked_in) looked += (looked.empty() ? "" : "; ") + l;
    switch (r.how) {
      case PretrainedResolution::How::local_path:
        f_.push(at(make_note("MG-SCHEMA-PRETRAINED-LOCAL",
                             "compression model reference '" + r.name + "' is an existing local path: AudioCraft "
                             "loads " + r.path + " (relative to the current directory)",
                             "that file is checked as the compression model"),
                   p, "pretrained"));
        break;
      case PretrainedResolution::How::hf_transformers: {
        std::string files;
        for (const auto& x : r.hf_files) files += (files.empty() ? "" : ", ") + x;
        std::string cfg;
        for (const auto& x : r.hf_config_summary) cfg += (cfg.empty() ? "" : ", ") + x;
        f_.push(at(make_note("MG-SCHEMA-PRETRAINED-HF",
                             "compression model reference '" + r.name + "' resolves offline to the Hugging Face "
                             "cache (transformers EncodecModel: " + files + (cfg.empty() ? "" : "; " + cfg) +
                             ") at " + r.hf_snapshot + "; mgcheck does not convert transformers weights, so "
                             "they are not checked",
                             "to check the codec too, export it in AudioCraft format (export_encodec) and "
                             "point 'pretrained' at that file"),
                   p, "pretrained"));
        break;
      }
      case PretrainedResolution::How::debug_model:
        f_.push(at(make_warning("MG-SCHEMA-PRETRAINED-DEBUG",
                                "compression model reference 'debug_compression_model' builds AudioCraft's "
                                "randomly initialised debug EnCodec: audio will be noise",
                                "reference a trained codec (e.g. facebook/encodec_32khz) or a full export"),
                   p, "pretrained"));
        break;
      case PretrainedResolution::How::unresolved:
        f_.push(at(make_error("MG-SCHEMA-PRETRAINED-UNRESOLVED",
                              "compression model reference '" + r.name + "' cannot be resolved offline: "
                              "AudioCraft's CompressionModel.get_pretrained would need the network (" +
                              (r.name.rfind("dac_", 0) == 0 ? std::string("the dac package downloads its weights")
                                                            : std::string("Hugging Face EncodecModel.from_pretrained")) +
                              "); looked in: " + looked,
                              "download it into the Hugging Face cache (huggingface-cli download " + r.name +
                              ") or replace the file with a full export (export_encodec); `mgcheck generate "
                              "--no-decode` checks the LM alone"),
                   p, "pretrained"));
        break;
    }
  }

  ExportInfo info_;

 private:
  const Checkpoint& ck_;
  const ValueArena& a_;
  Findings& f_;
};

// A few config.json fields of a transformers EncodecModel, for the report (yaml-cpp reads JSON).
std::vector<std::string> summarize_hf_config(const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec || size > (1u << 20)) return out;
  try {
    YAML::Node n = YAML::LoadFile(path);
    for (const char* k : {"model_type", "sampling_rate", "audio_channels", "codebook_size", "target_bandwidths",
                          "upsampling_ratios", "hidden_size", "num_filters", "pad_mode", "use_causal_conv"}) {
      if (!n[k]) continue;
      YAML::Emitter e;
      e << YAML::Flow << n[k];
      out.push_back(std::string(k) + "=" + e.c_str());
    }
  } catch (const std::exception&) {
    out.push_back("config.json does not parse");
  }
  return out;
}

}  // namespace

const char* export_kind_name(ExportKind k) noexcept {
  switch (k) {
    case ExportKind::lm_export: return "lm_export";
    case ExportKind::compression_export: return "compression_export";
    case ExportKind::pretrained_reference: return "pretrained_reference";
    case ExportKind::training_checkpoint: return "training_checkpoint";
    case ExportKind::invalid: return "invalid";
  }
  return "invalid";
}

bool looks_like_training_checkpoint(const Checkpoint& ck) {
  const ValueArena& a = ck.pickle.arena;
  const ValueId root = ck.pickle.root;
  if (!a.is_dict(root)) return false;
  // xp.cfg as an object (a pickled DictConfig) rather than YAML text.
  ValueId cfg = a.dict_get(root, "xp.cfg");
  if (cfg != kNoValue && a[cfg].kind == ValueKind::object) return true;
  // best_state / fsdp_best_state of the form {'model': {...}} (or {}, next to a model).
  for (const char* k : {"best_state", "fsdp_best_state"}) {
    ValueId bs = a.dict_get(root, k);
    if (!a.is_dict(bs)) continue;
    ValueId m = a.dict_get(bs, "model");
    if (m != kNoValue && a.is_dict(m)) return true;
  }
  size_t training = 0;
  const Value& r = a[root];
  for (size_t i = 0; i + 1 < r.items.size(); i += 2)
    if (a.is_string(r.items[i]) && training_keys().count(a[r.items[i]].s)) ++training;
  if (a.dict_get(root, "model") != kNoValue && a.dict_get(root, "optimizer") != kNoValue) return true;
  if (training >= 2) return true;
  // omegaconf globals in the pickle and training keys.
  for (const auto& g : ck.pickle.globals)
    if (g.cls == GlobalClass::inert && g.module.rfind("omegaconf", 0) == 0 && training >= 1) return true;
  return false;
}

ExportInfo classify_and_check_lm(const Checkpoint& ckpt, Findings& findings) {
  Checker c(ckpt, findings, FileRole::lm);
  return c.run_export(false, nullptr);
}

ExportInfo classify_and_check_compression(const Checkpoint& ckpt, const Env& env, Findings& findings) {
  Checker c(ckpt, findings, FileRole::compression);
  return c.run_export(true, &env);
}

Finding missing_file_finding(FileRole role, const std::string& path) {
  const bool lm = role == FileRole::lm;
  Finding f = make_error(
      "MG-SCHEMA-MISSING-FILE",
      std::string(lm ? "the LM file" : "the compression model file") + " " + path +
          " does not exist (AudioCraft: FileNotFoundError / hf_hub_download failure)",
      lm ? "an export directory needs state_dict.bin from export_lm (or `mgcheck export lm`)"
         : "an export directory needs compression_state_dict.bin from export_encodec or "
           "export_pretrained_compression_model (or `mgcheck export encodec|pretrained`)");
  f.file = path;
  f.name = lm ? kLmFileName : kCompressionFileName;
  return f;
}

// mirrors audiocraft/models/encodec.py (CompressionModel.get_pretrained)
PretrainedResolution resolve_pretrained(const std::string& name, const Env& env) {
  PretrainedResolution r;
  r.name = name;
  if (name == "debug_compression_model") {
    r.how = PretrainedResolution::How::debug_model;
    return r;
  }
  if (name == "dac_44khz" || name == "dac_24khz") {
    r.looked_in.push_back("(the dac package's own download; no offline copy is read)");
    return r;  // unresolved
  }
  std::error_code ec;
  if (!name.empty() && fs::exists(name, ec)) {
    r.how = PretrainedResolution::How::local_path;
    r.path = fs::is_directory(name, ec) ? (fs::path(name) / kCompressionFileName).string() : name;
    r.looked_in.push_back(name);
    return r;
  }
  r.looked_in.push_back(name + " (as a local path)");
  // transformers' EncodecModel.from_pretrained reads the hub cache (not AUDIOCRAFT_CACHE_DIR).
  auto hub = env.hf_cache_dir();
  if (!hub || !is_valid_repo_id(name)) {
    if (!hub) r.looked_in.push_back("(no Hugging Face cache: HF_HUB_CACHE, HF_HOME and HOME are all unset)");
    return r;
  }
  auto config = find_in_hf_cache(*hub, name, "config.json", r.looked_in);
  if (!config) return r;
  std::optional<std::string> weights;
  for (const char* w : {"model.safetensors", "pytorch_model.bin"}) {
    weights = find_in_hf_cache(*hub, name, w, r.looked_in);
    if (weights) break;
  }
  if (!weights) return r;
  r.how = PretrainedResolution::How::hf_transformers;
  r.hf_snapshot = fs::path(*config).parent_path().string();
  r.hf_files = {"config.json", fs::path(*weights).filename().string()};
  r.hf_config_summary = summarize_hf_config(*config);
  return r;
}

}  // namespace mgcheck::format

// mirrors audiocraft/utils/export.py (export_lm, export_encodec, export_pretrained_compression_model)
#include "mgcheck/format/export.h"

#include <filesystem>
#include <memory>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/pickle.h"
#include "mgcheck/format/resolve.h"
#include "mgcheck/format/schema.h"
#include "mgcheck/format/writer.h"

namespace mgcheck::format {
namespace fs = std::filesystem;

namespace {

Finding export_error(const std::string& code, const std::string& file, const std::string& msg,
                     const std::string& hint) {
  Finding f = make_error(code, msg, hint);
  f.file = file;
  return f;
}

struct Input {
  std::unique_ptr<MappedFile> src;
  Checkpoint ck;
};

// Reads the input strictly. Anything unsafe, and any error finding, stops the export: mgcheck never
// re-publishes a file it would not pass.
Result<Input> read_input(const std::string& path, const Limits& limits, Findings& findings) {
  auto m = MappedFile::open(path);
  if (!m.ok()) return m.error();
  Input in;
  in.src = std::move(m.value());
  Findings local;
  auto r = read_checkpoint(*in.src, limits, ReadOptions{}, local);
  // Inert-class notes (omegaconf globals of a training checkpoint) are expected here: keep them all.
  const bool unsafe = local.has_unsafe();
  const bool errors = local.has_errors();
  std::string first;
  for (const auto& f : local.items())
    if (f.severity == Severity::error && first.empty()) first = f.code + ": " + f.message;
  for (auto& f : local.items()) findings.push(std::move(f));
  if (!r.ok()) return r.error();
  if (unsafe || errors)
    return export_error("MG-SCHEMA-EXPORT-INPUT", path,
                        std::string("the input checkpoint has ") + (unsafe ? "unsafe content" : "errors") +
                            " (" + first + "); nothing was written",
                        "run `mgcheck inspect` on it; only a clean checkpoint is exported");
  in.ck = std::move(r.value());
  return in;
}

// One checked tensor as the writer's tensor, sharing the input storage bytes (no copy).
WTensor wtensor_of(const Checkpoint& ck, size_t ti) {
  const TensorView& tv = ck.tensors[ti];
  const TensorRef& tr = ck.pickle.tensors[ti];
  WTensor w;
  w.dtype = tv.dtype;
  w.sizes = tv.sizes;
  w.strides = tv.strides;
  w.storage_offset = tv.storage_offset;
  w.storage = tv.storage;
  w.share_key = tv.storage_key;  // torch.save keeps storage sharing; so do we
  w.parameter = tr.parameter;
  w.requires_grad = tr.requires_grad;
  return w;
}

bool tensor_ok(const Checkpoint& ck, size_t ti) {
  return ti < ck.tensors.size() && ti < ck.pickle.tensors.size() && ck.tensors[ti].valid;
}

// A dict of str → tensor as the writer's tree, tensors sharing their input storage bytes (no copy).
Result<WDict> state_dict_tree(const Checkpoint& ck, ValueId dict, const std::string& what, size_t& count,
                              uint64_t& bytes) {
  const ValueArena& a = ck.pickle.arena;
  WDict out;
  const Value& d = a[dict];
  for (size_t i = 0; i + 1 < d.items.size(); i += 2) {
    const Value& k = a[d.items[i]];
    const Value& v = a[d.items[i + 1]];
    if (k.kind != ValueKind::string || v.kind != ValueKind::tensor)
      return export_error("MG-SCHEMA-EXPORT-NO-WEIGHTS", ck.file,
                          what + " is not a dict of str → tensor (entry " + std::to_string(i / 2) + " is " +
                              value_kind_name(k.kind) + " → " + value_kind_name(v.kind) + ")",
                          "the checkpoint was not written by an AudioCraft solver");
    const auto ti = static_cast<size_t>(v.i);
    if (!tensor_ok(ck, ti))
      return export_error("MG-SCHEMA-EXPORT-NO-WEIGHTS", ck.file, "tensor '" + k.s + "' failed its checks",
                          "run `mgcheck inspect` on the checkpoint");
    bytes += ck.tensors[ti].span_bytes;
    ++count;
    out.emplace_back(k.s, WValue(wtensor_of(ck, ti)));
  }
  return out;
}

// Python truthiness of a container value.
bool truthy(const ValueArena& a, ValueId id) {
  if (id == kNoValue) return false;
  const Value& v = a[id];
  switch (v.kind) {
    case ValueKind::none: return false;
    case ValueKind::boolean:
    case ValueKind::integer: return v.i != 0;
    case ValueKind::dict:
    case ValueKind::list:
    case ValueKind::tuple:
    case ValueKind::set:
    case ValueKind::string:
    case ValueKind::bytes: return !v.items.empty() || !v.s.empty();
    default: return true;
  }
}

Status make_outdir(const std::string& outdir) {
  std::error_code ec;
  fs::create_directories(outdir, ec);
  if (ec || !fs::is_directory(outdir, ec)) {
    Finding f = make_error("MG-IO-MKDIR", "cannot create the output directory " + outdir + ": " + ec.message(),
                           "check the path and its permissions");
    f.file = outdir;
    return f;
  }
  return ok_status();
}

// Generic inert value → writer tree (for re-saving an exported file unchanged).
Result<WValue> to_wvalue(const Checkpoint& ck, ValueId id, uint32_t depth) {
  const ValueArena& a = ck.pickle.arena;
  if (depth > 64) return export_error("MG-SCHEMA-EXPORT-INPUT", ck.file, "nesting too deep to re-save", "");
  const Value& v = a[id];
  switch (v.kind) {
    case ValueKind::none: return WValue(WNone{});
    case ValueKind::boolean: return WValue(v.i != 0);
    case ValueKind::integer: return WValue(static_cast<int64_t>(v.i));
    case ValueKind::floating: return WValue(v.f);
    case ValueKind::string: return WValue(v.s);
    case ValueKind::list:
    case ValueKind::tuple: {
      WList l;
      for (ValueId c : v.items) {
        auto w = to_wvalue(ck, c, depth + 1);
        if (!w.ok()) return w;
        l.push_back(std::move(w.value()));
      }
      WValue out(std::move(l));
      out.tuple = v.kind == ValueKind::tuple;
      return out;
    }
    case ValueKind::dict: {
      WDict d;
      for (size_t i = 0; i + 1 < v.items.size(); i += 2) {
        if (a[v.items[i]].kind != ValueKind::string)
          return export_error("MG-SCHEMA-EXPORT-INPUT", ck.file, "a dict key that is not a str", "");
        const Value& item = a[v.items[i + 1]];
        if (item.kind == ValueKind::tensor) {
          const auto ti = static_cast<size_t>(item.i);
          if (!tensor_ok(ck, ti))
            return export_error("MG-SCHEMA-EXPORT-INPUT", ck.file, "a tensor failed its checks", "");
          d.emplace_back(a[v.items[i]].s, WValue(wtensor_of(ck, ti)));
          continue;
        }
        auto w = to_wvalue(ck, v.items[i + 1], depth + 1);
        if (!w.ok()) return w;
        d.emplace_back(a[v.items[i]].s, std::move(w.value()));
      }
      WValue out(std::move(d));
      out.ordered_dict = v.ordered_dict;
      return out;
    }
    default:
      return export_error("MG-SCHEMA-EXPORT-INPUT", ck.file,
                          std::string("a value of type ") + value_kind_name(v.kind) + " cannot be re-saved", "");
  }
}

}  // namespace

Result<ExportResult> export_model(ExportWhat what, const std::string& checkpoint, const std::string& outdir,
                                  const ExportOptions& opts, Findings& findings) {
  const bool lm = what == ExportWhat::lm;
  auto in = read_input(checkpoint, opts.limits, findings);
  if (!in.ok()) return in.error();
  Checkpoint& ck = in->ck;
  ValueArena& a = ck.pickle.arena;
  const ValueId root = ck.pickle.root;
  if (!a.is_dict(root))
    return export_error("MG-SCHEMA-EXPORT-NOT-TRAINING", checkpoint, "the checkpoint's top-level object is not a dict",
                        "pass the checkpoint.th an AudioCraft training run wrote");

  // Where the weights are: export_lm prefers a truthy fsdp_best_state (the gathered, normally named
  // state of an FSDP run), else best_state; export_encodec always takes best_state.
  ExportResult res;
  ValueId holder = kNoValue;
  if (lm) {
    ValueId fsdp = a.dict_get(root, "fsdp_best_state");
    if (truthy(a, fsdp)) {
      holder = fsdp;
      res.source = "fsdp_best_state.model";
    }
  }
  if (holder == kNoValue) {
    ValueId bs = a.dict_get(root, "best_state");
    if (!truthy(a, bs)) {
      const bool already = a.dict_get(root, "exported") != kNoValue ||
                           (a.dict_get(root, "xp.cfg") != kNoValue && a.is_string(a.dict_get(root, "xp.cfg")));
      return export_error("MG-SCHEMA-EXPORT-NO-WEIGHTS", checkpoint,
                          already ? "the file is already an export (xp.cfg is text, no best_state.model)"
                                  : std::string("the checkpoint has no ") +
                                        (lm ? "non-empty fsdp_best_state or best_state" : "non-empty best_state") +
                                        " (AudioCraft: " + (lm ? "AssertionError" : "KeyError") + ")",
                          already ? "it can be used as is; `mgcheck quick` checks it"
                                  : "export a checkpoint saved after at least one validation (best_state is "
                                    "filled when a best model is recorded)");
    }
    holder = bs;
    res.source = "best_state.model";
  }
  ValueId model = a.dict_get(holder, "model");
  if (!a.is_dict(model) || a.dict_size(model) == 0) {
    if (a.is_string(a.dict_get(root, "xp.cfg")))
      return export_error("MG-SCHEMA-EXPORT-NO-WEIGHTS", checkpoint,
                          "the file is already an export (xp.cfg is text, best_state holds the tensors directly)",
                          "it can be used as is; `mgcheck quick` checks it");
    return export_error("MG-SCHEMA-EXPORT-NO-WEIGHTS", checkpoint,
                        res.source + " is " + (model == kNoValue ? "missing" : "not a non-empty dict"),
                        "the checkpoint was not written by an AudioCraft solver");
  }

  // The config: OmegaConf.to_yaml(pkg['xp.cfg']).
  ValueId cfg = a.dict_get(root, "xp.cfg");
  if (cfg == kNoValue)
    return export_error("MG-SCHEMA-EXPORT-NO-CFG", checkpoint, "the checkpoint has no 'xp.cfg'",
                        "AudioCraft's solvers store the experiment config there; without it nothing can load the model");
  if (a[cfg].kind == ValueKind::string) {
    res.xp_cfg = a[cfg].s;  // already text (a hand-made checkpoint): kept verbatim
  } else {
    auto plain = omegaconf_to_plain(ck.pickle, cfg, opts.limits);
    if (!plain.ok()) {
      Finding f = plain.error();
      f.file = checkpoint;
      return f;
    }
    auto yaml = omegaconf_to_yaml(ck.pickle.arena, plain.value(), opts.limits);
    if (!yaml.ok()) {
      Finding f = yaml.error();
      f.file = checkpoint;
      return f;
    }
    res.xp_cfg = std::move(yaml.value());
  }

  auto sd = state_dict_tree(ck, model, res.source, res.tensors, res.tensor_bytes);
  if (!sd.ok()) return sd.error();

  if (auto st = make_outdir(outdir); !st.ok()) return st.error();
  res.output = (fs::path(outdir) / (lm ? kLmFileName : kCompressionFileName)).string();
  WDict top;
  top.emplace_back("best_state", WValue(std::move(sd.value())));  // a plain dict, as the solver's copy is
  top.emplace_back("xp.cfg", WValue(res.xp_cfg));
  top.emplace_back("version", WValue(std::string(kExportVersion)));
  top.emplace_back("exported", WValue(true));
  WriteOptions wo;
  wo.folder = fs::path(res.output).stem().string();  // torch.save names the folder after the file
  wo.overwrite = opts.force;
  if (auto st = write_torch_save_file(res.output, WValue(std::move(top)), wo); !st.ok()) return st.error();
  return res;
}

Result<ExportResult> export_pretrained(const std::string& name, const std::string& outdir,
                                       const ExportOptions& opts, Findings& findings) {
  ExportResult res;
  std::error_code ec;
  WValue top;
  if (!name.empty() && fs::exists(name, ec)) {
    // An exported file (or a directory holding one) is re-saved unchanged after the four-key check.
    std::string path = fs::is_directory(name, ec) ? (fs::path(name) / kCompressionFileName).string() : name;
    auto in = read_input(path, opts.limits, findings);
    if (!in.ok()) return in.error();
    const Checkpoint& ck = in->ck;
    const ValueArena& a = ck.pickle.arena;
    for (const char* k : {"best_state", "xp.cfg", "version", "exported"})
      if (a.dict_get(ck.pickle.root, k) == kNoValue)
        return export_error("MG-SCHEMA-EXPORT-PRETRAINED-KEYS", path,
                            std::string("the file has no '") + k +
                                "' (AudioCraft's export_pretrained_compression_model asserts best_state, xp.cfg, "
                                "version and exported)",
                            "pass a compression model exported with export_encodec, or a model name");
    auto w = to_wvalue(ck, ck.pickle.root, 0);
    if (!w.ok()) return w.error();
    top = std::move(w.value());
    res.source = "re-saved";
    if (ValueId c = a.dict_get(ck.pickle.root, "xp.cfg"); a.is_string(c)) res.xp_cfg = a[c].s;
    if (auto st = make_outdir(outdir); !st.ok()) return st.error();
    res.output = (fs::path(outdir) / kCompressionFileName).string();
    WriteOptions wo;
    wo.folder = "compression_state_dict";
    wo.overwrite = opts.force;
    if (auto st = write_torch_save_file(res.output, top, wo); !st.ok()) return st.error();
    return res;
  }
  if (name.empty())
    return export_error("MG-SCHEMA-EXPORT-PRETRAINED-KEYS", "", "empty compression model name",
                        "pass a name such as facebook/encodec_32khz, or an exported file");
  WDict d;
  d.emplace_back("pretrained", WValue(name));
  d.emplace_back("exported", WValue(true));
  d.emplace_back("version", WValue(std::string(kExportVersion)));
  res.source = "pretrained";
  if (auto st = make_outdir(outdir); !st.ok()) return st.error();
  res.output = (fs::path(outdir) / kCompressionFileName).string();
  WriteOptions wo;
  wo.folder = "compression_state_dict";
  wo.overwrite = opts.force;
  if (auto st = write_torch_save_file(res.output, WValue(std::move(d)), wo); !st.ok()) return st.error();
  return res;
}

}  // namespace mgcheck::format

#include "mgcheck/harness/inspect.h"

#include <filesystem>
#include <map>
#include <sstream>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/schema.h"
#include "mgcheck/harness/file_info.h"

namespace mgcheck::harness {

using format::ValueId;
using format::ValueKind;
using nlohmann::json;

namespace {

// A bounded, iterative-depth summary of the value tree: dicts and lists are described to `max_depth`
// levels; a dict whose values are all tensors is summarised as "N tensors". Budget-limited so that a
// hostile tree cannot make the report large.
json summarize(const format::Checkpoint& ck, ValueId id, int depth, size_t& budget) {
  const auto& arena = ck.pickle.arena;
  if (id == format::kNoValue || budget == 0) return "…";
  --budget;
  const auto& v = arena[id];
  switch (v.kind) {
    case ValueKind::none: return nullptr;
    case ValueKind::boolean: return v.i != 0;
    case ValueKind::integer: return v.i;
    case ValueKind::floating: return v.f;
    case ValueKind::string:
      if (v.s.size() > 80) return "str (" + std::to_string(v.s.size()) + " chars)";
      return v.s;
    case ValueKind::bytes: return "bytes (" + std::to_string(v.s.size()) + ")";
    case ValueKind::tensor: {
      const auto& t = ck.pickle.tensors.at(static_cast<size_t>(v.i));
      std::ostringstream s;
      s << "tensor " << format::dtype_name(t.dtype) << " [";
      for (size_t i = 0; i < t.sizes.size(); ++i) s << (i ? "," : "") << t.sizes[i];
      s << "]";
      return s.str();
    }
    case ValueKind::global: return "global " + v.s;
    case ValueKind::storage: return "storage";
    case ValueKind::object: return std::string("object") + (v.poisoned ? " (refused)" : "");
    case ValueKind::mark: return "mark";
    case ValueKind::list:
    case ValueKind::tuple:
    case ValueKind::set: {
      std::string kind = format::value_kind_name(v.kind);
      if (depth <= 0 || v.items.size() > 16) return kind + " of " + std::to_string(v.items.size());
      json a = json::array();
      for (ValueId c : v.items) a.push_back(summarize(ck, c, depth - 1, budget));
      return a;
    }
    case ValueKind::dict: {
      size_t n = v.items.size() / 2, tensors = 0;
      for (size_t i = 0; i < n; ++i)
        if (arena[v.items[2 * i + 1]].kind == ValueKind::tensor) ++tensors;
      std::string kind = v.ordered_dict ? "OrderedDict" : "dict";
      if (n > 0 && tensors == n) return kind + " of " + std::to_string(n) + " tensors";
      if (depth <= 0 || n > 64) return kind + " of " + std::to_string(n) + " items";
      json o = json::object();
      for (size_t i = 0; i < n; ++i) {
        const auto& k = arena[v.items[2 * i]];
        std::string key = k.kind == ValueKind::string ? k.s : std::string("<") + format::value_kind_name(k.kind) + ">";
        o[key] = summarize(ck, v.items[2 * i + 1], depth - 1, budget);
      }
      return o;
    }
  }
  return nullptr;
}

}  // namespace

void run_inspect(const std::string& path, Report& report) {
  report.command = "inspect";
  report.target = path;
  report.checks_run = {"IO", "ZIP", "PICKLE", "TENSOR"};
  auto mapped = format::MappedFile::open(path);
  if (!mapped) {
    report.findings.add(mapped.error());
    return;
  }
  const format::ByteSource& src = *mapped.value();
  FileInfo info;
  info.path = path;
  info.bytes = src.size();
  info.sha256 = sha256_hex(src.bytes());
  format::Findings& findings = report.findings;
  findings.set_cap(static_cast<size_t>(report.limits.max_findings));
  auto ck = format::read_checkpoint(src, report.limits, format::ReadOptions{}, findings);
  json ins = json::object();
  if (!ck) {
    if (!findings.has_code(ck.error().code)) findings.add(ck.error());
    info.format = "";
    report.files.push_back(info);
    report.extra["inspect"] = ins;
    return;
  }
  const auto& c = ck.value();
  info.format = format::container_kind_name(c.kind);
  info.tensors = c.named.size();
  report.files.push_back(info);

  ins["format"] = info.format;
  ins["folder"] = c.folder;
  ins["pickle_protocol"] = c.pickle.protocol;
  ins["records"] = json::array();
  for (const auto& r : c.records)
    ins["records"].push_back({{"name", r.name}, {"offset", r.data_offset}, {"bytes", r.size},
                              {"crc32", r.crc32}, {"crc_ok", r.crc_ok}});
  size_t budget = 2000;
  ins["structure"] = summarize(c, c.pickle.root, 3, budget);
  ins["tensors"] = json::array();
  for (const auto& n : c.named) {
    const auto& t = c.tensors.at(n.tensor);
    ins["tensors"].push_back({{"name", n.path},
                              {"dtype", format::dtype_name(t.dtype)},
                              {"shape", t.sizes},
                              {"strides", t.strides},
                              {"storage_offset", t.storage_offset},
                              {"storage", t.storage_key},
                              {"bytes", t.numel * format::itemsize(t.dtype)}});
  }
  // Every GLOBAL referenced, with its class and how often.
  std::map<std::string, std::pair<std::string, size_t>> globals;
  std::map<std::string, uint64_t> first_offset;
  for (const auto& g : c.pickle.globals) {
    std::string name = g.module + "." + g.name;
    auto& e = globals[name];
    e.first = format::global_class_name(g.cls);
    if (e.second++ == 0) first_offset[name] = g.offset;
  }
  ins["globals"] = json::array();
  for (const auto& [name, e] : globals)
    ins["globals"].push_back({{"name", name}, {"class", e.first}, {"count", e.second},
                              {"first_offset", first_offset[name]}});
  report.extra["inspect"] = ins;
  // A raw training checkpoint is readable as inert data, but it is not something to load (AudioCraft's
  // loaders fail on it, and weights_only torch.load refuses its omegaconf globals): say so and fail.
  if (format::looks_like_training_checkpoint(c)) {
    std::string names;
    for (const auto& [name, e] : globals)
      if (e.first == "inert") names += (names.empty() ? "" : ", ") + name;
    format::Finding f = format::make_error(
        "MG-SCHEMA-TRAINING-CHECKPOINT",
        "raw AudioCraft training checkpoint, not an export" +
            (names.empty() ? std::string() : " (needs training-only globals: " + names + ")"),
        "export it first: `mgcheck export lm CKPT OUTDIR` (or `export encodec` for a compression model)");
    f.file = path;
    findings.push(f);
  }
}

void print_inspect(const Report& report, std::ostream& out) {
  if (!report.extra.contains("inspect")) return;
  const json& ins = report.extra["inspect"];
  if (ins.empty()) return;
  out << "format: " << ins.value("format", "?") << "   folder: " << ins.value("folder", "") << "   pickle protocol "
      << ins.value("pickle_protocol", 0) << "\n";
  out << "records (" << ins["records"].size() << "):\n";
  size_t shown = 0;
  for (const auto& r : ins["records"]) {
    if (++shown > 40) {
      out << "  … " << ins["records"].size() - 40 << " more\n";
      break;
    }
    out << "  " << r["name"].get<std::string>() << "  @" << r["offset"] << "  " << r["bytes"] << " bytes"
        << (r["crc_ok"].get<bool>() ? "" : "  CRC MISMATCH") << "\n";
  }
  out << "structure: " << ins["structure"].dump(2) << "\n";
  out << "tensors (" << ins["tensors"].size() << "):\n";
  for (const auto& t : ins["tensors"]) {
    out << "  " << t["name"].get<std::string>() << "  " << t["dtype"].get<std::string>() << " " << t["shape"].dump()
        << " strides " << t["strides"].dump() << " offset " << t["storage_offset"] << "  " << t["bytes"]
        << " bytes\n";
  }
  out << "globals (" << ins["globals"].size() << "):\n";
  for (const auto& g : ins["globals"])
    out << "  " << g["name"].get<std::string>() << "  " << g["class"].get<std::string>() << "  x" << g["count"]
        << "  first @" << g["first_offset"] << "\n";
}

}  // namespace mgcheck::harness

// refs.pt loading and stage-by-stage comparison against AudioCraft's numbers.
#include "mgcheck/model/reference.h"

#include <c10/core/InferenceMode.h>

#include <cmath>
#include <sstream>

#include "mgcheck/format/limits.h"

namespace mgcheck::model {

std::optional<std::string> LoadedCheckpoint::root_string(const std::string& key) const {
  const auto& arena = checkpoint.pickle.arena;
  const format::ValueId root = checkpoint.pickle.root;
  if (!arena.is_dict(root)) return std::nullopt;
  const format::ValueId v = arena.dict_get(root, key);
  if (!arena.is_string(v)) return std::nullopt;
  return arena[v].s;
}

format::Result<LoadedCheckpoint> load_checkpoint_file(const std::string& path, format::Findings& findings) {
  auto mapped = format::MappedFile::open(path);
  if (!mapped) {
    findings.push(mapped.error());
    return mapped.error();
  }
  LoadedCheckpoint out;
  out.source = std::move(mapped.value());
  auto ck = format::read_checkpoint(*out.source, format::Limits{}, format::ReadOptions{}, findings);
  if (!ck) {
    findings.push(ck.error());
    return ck.error();
  }
  out.checkpoint = std::move(ck.value());
  return out;
}

format::Result<ReferenceSet> load_reference(const std::string& path, format::Findings& findings) {
  auto loaded = load_checkpoint_file(path, findings);
  if (!loaded) return loaded.error();
  ReferenceSet refs;
  refs.file = std::move(loaded.value());
  const auto& ck = refs.file.checkpoint;
  const auto& arena = ck.pickle.arena;
  if (!arena.is_dict(ck.pickle.root) || !arena.is_dict(arena.dict_get(ck.pickle.root, "tensors"))) {
    format::Finding f = format::make_error("MG-REF-READ", "reference file has no 'tensors' dict at its root",
                                           "pass a refs.pt written as {'tensors': {...}, 'meta_json': str}");
    f.file = ck.file;
    findings.push(f);
    return f;
  }
  const std::string head = "tensors/";
  for (const auto& named : ck.named) {
    if (named.path.compare(0, head.size(), head) != 0 || named.tensor >= ck.tensors.size()) continue;
    torch::Tensor t = view_as_torch(ck.tensors[named.tensor]);
    if (t.defined()) refs.tensors.emplace(named.path.substr(head.size()), t);
  }
  refs.meta_json = refs.file.root_string("meta_json").value_or("");
  return refs;
}

StageResult compare_stage(const std::string& stage, const torch::Tensor& actual, const torch::Tensor& expected,
                          double tolerance, bool exact, bool informative) {
  c10::InferenceMode guard;
  StageResult r;
  r.stage = stage;
  r.exact = exact;
  r.tolerance = exact ? 0.0 : tolerance;
  r.informative = informative;
  r.shape = expected.sizes().vec();
  if (!actual.defined()) {
    r.note = "not computed";
    return r;
  }
  if (actual.sizes() != expected.sizes()) {
    std::ostringstream o;
    o << "shape " << actual.sizes() << " differs from the reference " << expected.sizes();
    r.note = o.str();
    r.max_abs = std::numeric_limits<double>::infinity();
    return r;
  }
  torch::Tensor bad;  // elements beyond tolerance
  if (exact) {
    torch::Tensor a = actual.to(torch::kCPU, torch::kInt64), e = expected.to(torch::kCPU, torch::kInt64);
    bad = a.ne(e);
    r.max_abs = static_cast<double>(bad.sum().item<int64_t>());  // number of differing codes
  } else {
    torch::Tensor a = actual.to(torch::kCPU, torch::kFloat64), e = expected.to(torch::kCPU, torch::kFloat64);
    torch::Tensor a_nan = a.isnan(), e_nan = e.isnan();
    torch::Tensor diff = (a - e).abs().masked_fill(a_nan.logical_and(e_nan), 0.0);
    // NaN on one side only is a failure of its own; it must not hide behind max().
    bad = diff.gt(tolerance).logical_or(a_nan.logical_xor(e_nan)).logical_or(diff.isinf());
    torch::Tensor finite = diff.masked_fill(diff.isnan(), 0.0);
    r.max_abs = finite.numel() ? finite.max().item<double>() : 0.0;
    if (a_nan.logical_xor(e_nan).any().item<bool>()) r.note = "NaN where the reference has a number (or reverse)";
  }
  torch::Tensor flat_bad = bad.reshape({-1}).nonzero();
  if (flat_bad.numel() == 0) {
    r.pass = true;
    return r;
  }
  r.first_diff_flat = flat_bad[0][0].item<int64_t>();
  int64_t rest = r.first_diff_flat;
  r.first_diff_index.assign(r.shape.size(), 0);
  for (size_t d = r.shape.size(); d-- > 0;) {
    r.first_diff_index[d] = rest % r.shape[d];
    rest /= r.shape[d];
  }
  r.actual_at_diff = actual.reshape({-1})[r.first_diff_flat].to(torch::kCPU, torch::kFloat64).item<double>();
  r.expected_at_diff = expected.reshape({-1})[r.first_diff_flat].to(torch::kCPU, torch::kFloat64).item<double>();
  return r;
}

std::vector<StageResult> compare_encodec_stages(const Encodec& model, const ReferenceSet& refs,
                                                double tolerance_scale) {
  std::vector<StageResult> out;
  auto in = [&](const std::string& name) {
    return refs.at(name).to(model.device(), model.dtype(), /*non_blocking=*/false, /*copy=*/true);
  };
  auto codes_in = [&](const std::string& name) { return refs.at(name).to(model.device(), torch::kInt64); };
  const double lat_tol = kLatentTolerance * tolerance_scale, audio_tol = kAudioTolerance * tolerance_scale;
  auto guarded = [&](const std::string& stage, auto&& compute) {
    try {
      compute();
    } catch (const std::exception& e) {
      StageResult r;
      r.stage = stage;
      r.note = torch_error_finding(e, stage).message;
      out.push_back(std::move(r));
    }
  };
  // mirrors the fixture generator's recipe (corpus/audiocraft-tiny/README.md "Tensors in refs.pt")
  if (refs.has("encodec/input")) {
    const torch::Tensor x = in("encodec/input");
    if (refs.has("encodec/codes"))
      guarded("encodec/codes", [&] {
        out.push_back(compare_stage("encodec/codes", model.encode(x).codes, refs.at("encodec/codes"), 0, true));
      });
    torch::Tensor lat;
    if (refs.has("encodec/latent"))
      guarded("encodec/latent", [&] {
        lat = model.latent(x);
        out.push_back(compare_stage("encodec/latent", lat, refs.at("encodec/latent"), lat_tol, false));
      });
    if (refs.has("encodec/quantized_latent"))
      guarded("encodec/quantized_latent", [&] {
        // Fed AudioCraft's latent, so the stage isolates the quantiser.
        torch::Tensor q = model.quantize_roundtrip(in("encodec/latent"));
        out.push_back(compare_stage("encodec/quantized_latent", q, refs.at("encodec/quantized_latent"), lat_tol,
                                    false));
      });
  }
  if (refs.has("encodec/codes") && refs.has("encodec/decoded"))
    guarded("encodec/decoded", [&] {
      out.push_back(compare_stage("encodec/decoded", model.decode(codes_in("encodec/codes")),
                                  refs.at("encodec/decoded"), audio_tol, false));
    });
  if (refs.has("encodec/short_input") && refs.has("encodec/short_codes"))
    guarded("encodec/short_codes", [&] {
      out.push_back(compare_stage("encodec/short_codes", model.encode(in("encodec/short_input")).codes,
                                  refs.at("encodec/short_codes"), 0, true));
    });
  if (refs.has("encodec/short_codes") && refs.has("encodec/short_decoded"))
    guarded("encodec/short_decoded", [&] {
      out.push_back(compare_stage("encodec/short_decoded", model.decode(codes_in("encodec/short_codes")),
                                  refs.at("encodec/short_decoded"), audio_tol, false));
    });
  return out;
}

std::string format_stage(const StageResult& r) {
  std::ostringstream o;
  o << (r.pass ? "PASS " : (r.informative ? "INFO " : "FAIL ")) << r.stage;
  if (r.exact)
    o << "  differing=" << r.max_abs << " (exact)";
  else
    o << "  max_abs=" << r.max_abs << " tol=" << r.tolerance;
  if (r.first_diff_flat >= 0) {
    o << "  first diff at flat " << r.first_diff_flat << " [";
    for (size_t i = 0; i < r.first_diff_index.size(); ++i) o << (i ? "," : "") << r.first_diff_index[i];
    o << "] actual=" << r.actual_at_diff << " expected=" << r.expected_at_diff;
  }
  if (!r.note.empty()) o << "  (" << r.note << ")";
  return o.str();
}

}  // namespace mgcheck::model

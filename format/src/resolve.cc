#include "mgcheck/format/resolve.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>

namespace mgcheck::format {
namespace fs = std::filesystem;

namespace {

std::optional<std::string> env_var(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// A regular file, following symlinks (the HF cache's snapshot entries are links into blobs/).
bool is_file(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool exists(const std::string& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// refs/main holds a commit hash; only a plain revision name is turned into a path.
bool is_safe_revision(std::string_view r) {
  if (r.empty() || r.size() > 256 || r == "." || r == "..") return false;
  for (char c : r)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  return s.substr(b);
}

// mirrors audiocraft/models/musicgen.py (deprecated names of get_pretrained)
std::optional<std::string> short_name_repo(const std::string& arg) {
  for (const char* n : {"small", "medium", "large", "melody", "style"})
    if (arg == n) return std::string("facebook/musicgen-") + n;
  return std::nullopt;
}

Finding short_name_note(const std::string& arg, const std::string& repo, bool is_path) {
  Finding f = make_note(
      "MG-IO-TARGET-SHORT-NAME",
      is_path ? "'" + arg + "' is an existing path here, but AudioCraft's MusicGen.get_pretrained maps this "
                "deprecated short name to '" + repo + "' before looking at the file system"
              : "deprecated short name '" + arg + "' resolved as '" + repo +
                    "' (MusicGen.get_pretrained does the same, with a deprecation warning)",
      is_path ? "rename the directory or pass ./" + arg + " to AudioCraft to load the local copy"
              : "use the full repo id '" + repo + "'");
  f.name = arg;
  return f;
}

// "org/name" → "models--org--name".
std::string hf_repo_folder(const std::string& repo_id) {
  std::string folder = "models--";
  for (char c : repo_id) {
    if (c == '/') folder += "--";
    else folder += c;
  }
  return folder;
}

}  // namespace

const char* target_kind_name(TargetKind k) noexcept {
  switch (k) {
    case TargetKind::directory: return "directory";
    case TargetKind::file: return "file";
    case TargetKind::hf_repo: return "hf_repo";
  }
  return "?";
}

Env Env::from_process() {
  Env e;
  e.audiocraft_cache_dir = env_var("AUDIOCRAFT_CACHE_DIR");
  e.hf_hub_cache = env_var("HF_HUB_CACHE");
  e.hf_home = env_var("HF_HOME");
  e.home = env_var("HOME");
  return e;
}

// mirrors huggingface_hub/constants.py (HF_HUB_CACHE default chain)
std::optional<std::string> Env::hf_cache_dir() const {
  if (hf_hub_cache) return *hf_hub_cache;
  if (hf_home) return (fs::path(*hf_home) / "hub").string();
  if (home) return (fs::path(*home) / ".cache" / "huggingface" / "hub").string();
  return std::nullopt;
}

bool is_valid_repo_id(const std::string& s) noexcept {
  if (s.empty() || s.size() > 96 * 2 + 1) return false;
  size_t slash = s.find('/');
  if (slash != std::string::npos && s.find('/', slash + 1) != std::string::npos) return false;
  auto part_ok = [](std::string_view p) {
    if (p.empty() || p.size() > 96) return false;
    if (p.front() == '.' || p.front() == '-' || p.back() == '.' || p.back() == '-') return false;
    if (p.find("..") != std::string_view::npos || p.find("--") != std::string_view::npos) return false;
    for (char c : p)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
  };
  std::string_view v(s);
  if (slash == std::string::npos) return part_ok(v);
  return part_ok(v.substr(0, slash)) && part_ok(v.substr(slash + 1));
}

// mirrors huggingface_hub/file_download.py (repo_folder_name + snapshots/<rev> + refs/<revision>)
std::optional<std::string> find_in_hf_cache(const std::string& cache_dir, const std::string& repo_id,
                                            const std::string& filename,
                                            std::vector<std::string>& looked_in) {
  if (!is_valid_repo_id(repo_id)) return std::nullopt;
  fs::path repo_dir = fs::path(cache_dir) / hf_repo_folder(repo_id);
  fs::path ref = repo_dir / "refs" / "main";
  if (is_file(ref.string())) {
    std::ifstream in(ref);
    std::string rev;
    std::getline(in, rev);
    rev = trim(rev);
    if (is_safe_revision(rev)) {
      fs::path p = repo_dir / "snapshots" / rev / filename;
      looked_in.push_back(p.string());
      if (is_file(p.string())) return p.string();
      return std::nullopt;  // refs/main is authoritative, as in hf_hub_download
    }
    looked_in.push_back(ref.string() + " (unreadable revision)");
    return std::nullopt;
  }
  // No refs/main: accept the only snapshot holding the file (a hand-copied cache).
  fs::path snaps = repo_dir / "snapshots";
  looked_in.push_back((snaps / "*" / filename).string());
  if (!is_dir(snaps.string())) return std::nullopt;
  std::optional<std::string> found;
  int count = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(snaps, ec)) {
    if (++count > 10000) break;  // bounded walk
    fs::path p = entry.path() / filename;
    if (is_file(p.string())) {
      if (found) return std::nullopt;  // ambiguous without refs/main
      found = p.string();
    }
  }
  return found;
}

// mirrors audiocraft/models/loaders.py (_get_state_dict: cache_dir = AUDIOCRAFT_CACHE_DIR for hf_hub_download)
std::optional<std::string> find_repo_file(const std::string& repo_id, const std::string& filename,
                                          const Env& env, std::vector<std::string>& looked_in) {
  if (!is_valid_repo_id(repo_id)) return std::nullopt;
  if (env.audiocraft_cache_dir) {
    fs::path flat = fs::path(*env.audiocraft_cache_dir) / repo_id / filename;
    looked_in.push_back(flat.string());
    if (is_file(flat.string())) return flat.string();
    if (auto p = find_in_hf_cache(*env.audiocraft_cache_dir, repo_id, filename, looked_in)) return p;
  }
  if (auto hub = env.hf_cache_dir()) {
    if (auto p = find_in_hf_cache(*hub, repo_id, filename, looked_in)) return p;
  } else {
    looked_in.push_back("(no Hugging Face cache: HF_HUB_CACHE, HF_HOME and HOME are all unset)");
  }
  return std::nullopt;
}

Result<Target> resolve_target(std::string arg, const Env& env) {
  if (arg.empty())
    return make_error("MG-IO-TARGET-EMPTY", "empty TARGET",
                      "pass an export directory, a torch.save file or a Hugging Face repo id");
  if (arg.rfind("https://", 0) == 0 || arg.rfind("http://", 0) == 0) {
    Finding f = make_error("MG-IO-TARGET-URL",
                           "'" + arg + "' is a URL: mgcheck never uses the network (AudioCraft would fetch it "
                           "with torch.hub.load_state_dict_from_url)",
                           "download the file first (e.g. curl -LO URL) and pass the local path");
    f.name = arg;
    return f;
  }
  Target t;
  t.arg = arg;
  auto short_repo = short_name_repo(arg);

  if (is_dir(arg)) {
    t.kind = TargetKind::directory;
    t.lm_path = (fs::path(arg) / kLmFileName).string();
    t.compression_path = (fs::path(arg) / kCompressionFileName).string();
    t.lm_exists = is_file(t.lm_path);
    t.compression_exists = is_file(t.compression_path);
    t.looked_in = {t.lm_path, t.compression_path};
    if (short_repo) t.notes.push_back(short_name_note(arg, *short_repo, true));
    return t;
  }
  if (exists(arg)) {
    // A file (or a device/fifo: the reader refuses what is not a regular file with MG-IO-OPEN).
    t.kind = TargetKind::file;
    t.lm_path = t.compression_path = arg;
    t.lm_exists = t.compression_exists = is_file(arg);
    t.looked_in = {arg};
    if (short_repo) t.notes.push_back(short_name_note(arg, *short_repo, true));
    return t;
  }

  t.kind = TargetKind::hf_repo;
  t.repo_id = short_repo ? *short_repo : arg;
  if (short_repo) t.notes.push_back(short_name_note(arg, *short_repo, false));
  t.looked_in.push_back(arg + " (as a local path)");
  if (!is_valid_repo_id(t.repo_id)) {
    Finding f = make_error("MG-IO-TARGET-NOT-FOUND",
                           "'" + arg + "' is not an existing path, and not a valid Hugging Face repo id",
                           "pass an export directory, a torch.save file, or org/name of a cached repo");
    f.name = arg;
    return f;
  }
  auto lm = find_repo_file(t.repo_id, kLmFileName, env, t.looked_in);
  auto comp = find_repo_file(t.repo_id, kCompressionFileName, env, t.looked_in);
  if (!lm && !comp) {
    std::string places;
    for (const auto& p : t.looked_in) places += (places.empty() ? "" : "; ") + p;
    Finding f = make_error("MG-IO-TARGET-NOT-FOUND",
                           "'" + arg + "' is not an existing path, and repo '" + t.repo_id +
                               "' is not in any local cache; looked in: " + places,
                           "mgcheck works offline: download it first (e.g. huggingface-cli download " +
                               t.repo_id + " " + kLmFileName + " " + kCompressionFileName +
                               ") or pass the export directory");
    f.name = t.repo_id;
    return f;
  }
  // The file not found keeps the first place hf_hub_download would have used, for the missing-file finding.
  auto default_place = [&](const std::string& filename) {
    if (env.audiocraft_cache_dir) return (fs::path(*env.audiocraft_cache_dir) / t.repo_id / filename).string();
    return (fs::path(env.hf_cache_dir().value_or(".")) / hf_repo_folder(t.repo_id) / "snapshots" / "main" /
            filename).string();
  };
  t.lm_exists = lm.has_value();
  t.compression_exists = comp.has_value();
  t.lm_path = lm ? *lm : default_place(kLmFileName);
  t.compression_path = comp ? *comp : default_place(kCompressionFileName);
  return t;
}

}  // namespace mgcheck::format

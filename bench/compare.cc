// mgcheck-compare: one run, same files, same process environment — mgcheck against what users would
// otherwise run, with warm and cold page cache (cold: posix_fadvise(POSIX_FADV_DONTNEED) on the files
// before each repetition). Prints a ratio table and writes JSON (median, min, max of N repetitions, the
// load average around every row, CPU and thread settings).
//
//   mgcheck-compare [--model DIR] [--reps N] [--json FILE] [--only quick,io,python,libtorch,build,decode,bandwidth]
//                   [--threads N (OpenBLAS + small-linear kernel, default 2)] [--torch-threads N (default 1)]
//                   [--no-cold] [--python /usr/bin/python3]
#include <fcntl.h>
#include <libdeflate.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_env.h"
#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/container.h"
#include "mgcheck/format/inventory.h"
#include "mgcheck/format/xpcfg.h"

#ifdef MGCHECK_BENCH_TORCH
#include <torch/serialize.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "mgcheck/model/encodec.h"
#include "mgcheck/model/lm.h"
#include "mgcheck/model/weights.h"
#include "naive_lm.h"
#endif

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of this process (all threads). On a shared, loaded machine wall time includes waiting for a
// core; CPU time does not, so every row records both.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
// CPU seconds of child processes run by the current repetition (run_child adds to it).
double g_child_cpu = 0;

uint64_t file_size(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Drops the files' clean pages from the page cache (they are not mapped by anyone at this point).
void drop_cache(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

void warm_cache(const std::vector<std::string>& files) {
  std::vector<char> buf(4u << 20);
  for (const auto& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    while (::read(fd, buf.data(), buf.size()) > 0) {
    }
    ::close(fd);
  }
}

struct Row {
  std::string name;
  std::string group;  // rows of one group share a baseline
  std::string cache;  // "warm" | "cold" | "-"
  std::vector<double> secs;
  std::vector<double> cpu;  // CPU seconds per repetition (this process's threads + children)
  uint64_t bytes = 0;      // processed per repetition (for GB/s)
  double load_before = 0, load_after = 0;
  json extra = json::object();

  static double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  }
  double cpu_median() const { return median_of(cpu); }
  double median() const {
    auto v = secs;
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  }
  double min() const { return secs.empty() ? 0 : *std::min_element(secs.begin(), secs.end()); }
  double max() const { return secs.empty() ? 0 : *std::max_element(secs.begin(), secs.end()); }
};

struct Options {
  std::string model = mgcheck::bench::model_dir();
  int reps = 5;
  std::string json_out = "bench-compare.json";
  std::set<std::string> only;
  bool cold = true;
  int threads = 2;        // OpenBLAS and the small-linear kernel
  int torch_threads = 1;  // libtorch intra-op (2 oversubscribes with OpenBLAS on 2 cores: up to 5× slower)
  std::string python = "/usr/bin/python3";
  int decode_steps = 20;
  std::vector<std::string> scaling;  // --scaling FILE...: quick time and memory per file size
};

bool wanted(const Options& o, const std::string& what) { return o.only.empty() || o.only.count(what) != 0; }

class Runner {
 public:
  explicit Runner(const Options& o) : opts_(o) {}

  // Times `fn` over reps (after `prepare`, untimed, before each repetition).
  Row& time(const std::string& name, const std::string& group, const std::string& cache, uint64_t bytes,
            const std::function<void()>& fn, const std::function<void()>& prepare = {}, int reps = -1) {
    Row r;
    r.name = name;
    r.group = group;
    r.cache = cache;
    r.bytes = bytes;
    r.load_before = mgcheck::bench::load_average_1m();
    for (int i = 0; i < (reps < 0 ? opts_.reps : reps); ++i) {
      if (prepare) prepare();
      g_child_cpu = 0;
      const double c0 = process_cpu_seconds();
      auto t0 = Clock::now();
      fn();
      r.secs.push_back(seconds_since(t0));
      r.cpu.push_back(process_cpu_seconds() - c0 + g_child_cpu);
    }
    r.load_after = mgcheck::bench::load_average_1m();
    rows_.push_back(std::move(r));
    std::fprintf(stderr, "  %-58s %-5s %9.3f s (load %.1f)\n", rows_.back().name.c_str(), cache.c_str(),
                 rows_.back().median(), rows_.back().load_after);
    return rows_.back();
  }
  Row& add(Row r) {
    rows_.push_back(std::move(r));
    std::fprintf(stderr, "  %-58s %-5s %9.3f s (load %.1f)\n", rows_.back().name.c_str(),
                 rows_.back().cache.c_str(), rows_.back().median(), rows_.back().load_after);
    return rows_.back();
  }
  std::vector<Row>& rows() { return rows_; }

 private:
  const Options& opts_;
  std::vector<Row> rows_;
};

// ---- the IO floors and CRCs ----

uint32_t read_and_crc(const std::vector<std::string>& files, bool crc) {
  static std::vector<uint8_t> buf(4u << 20);
  uint32_t c = 0;
  for (const auto& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
      if (crc) c = libdeflate_crc32(c, buf.data(), static_cast<size_t>(n));
    }
    ::close(fd);
  }
  return c;
}

// mmap with MAP_POPULATE: the page tables are filled in one call instead of one fault per 64 KiB.
uint32_t mmap_populate_crc(const std::vector<std::string>& files) {
  uint32_t c = 0;
  for (const auto& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    const size_t n = file_size(f);
    void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) continue;
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t off = 0; off < n; off += 1u << 30) c = libdeflate_crc32(c, b + off, std::min<size_t>(1u << 30, n - off));
    ::munmap(p, n);
  }
  return c;
}

uint32_t mmap_crc(const std::vector<std::string>& files, bool use_zlib) {
  uint32_t c = 0;
  for (const auto& f : files) {
    auto m = mgcheck::format::MappedFile::open(f);
    if (!m) continue;
    auto b = (*m)->bytes();
    for (size_t off = 0; off < b.size(); off += 1u << 30) {
      size_t n = std::min<size_t>(1u << 30, b.size() - off);
      c = use_zlib ? static_cast<uint32_t>(::crc32(c, b.data() + off, static_cast<uInt>(n)))
                   : libdeflate_crc32(c, b.data() + off, n);
    }
  }
  return c;
}

// ---- `mgcheck quick` as a child process: wall time, peak RSS, peak anonymous RSS ----

struct ChildRun {
  double secs = 0;
  int status = -1;
  long maxrss_kb = 0;          // getrusage: includes the file pages of the mapping that were touched
  long peak_anon_kb = 0;       // RssAnon sampled every ~2 ms from /proc/PID/status: the heap, not the mapping
};

long proc_status_kb(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, n, key) == 0) return std::strtol(line.c_str() + n, nullptr, 10);
  }
  return -1;
}

ChildRun run_child(const std::vector<std::string>& argv, std::string* out = nullptr) {
  int pipefd[2] = {-1, -1};
  if (out && ::pipe(pipefd) != 0) return {};
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(out ? pipefd[1] : devnull, 1);
    if (out) {
      ::close(pipefd[0]);
      ::close(pipefd[1]);
    }
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    _exit(127);
  }
  ChildRun r;
  if (out) {
    ::close(pipefd[1]);
    // Reading the pipe blocks; sampling happens only for children without output capture.
    char buf[65536];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
    ::close(pipefd[0]);
  }
  struct rusage ru {};
  int status = 0;
  for (;;) {
    pid_t w = ::wait4(pid, &status, out ? 0 : WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0) break;
    // Until exec replaces it, the forked child still shares this process's (libtorch-sized) heap: sample
    // only once /proc/PID/exe names the program being measured.
    std::error_code ec;
    if (std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).filename() ==
        std::filesystem::path(argv[0]).filename()) {
      long anon = proc_status_kb(pid, "RssAnon:");
      r.peak_anon_kb = std::max(r.peak_anon_kb, anon);
    }
    ::usleep(2000);
  }
  r.secs = seconds_since(t0);
  r.status = status;
  r.maxrss_kb = ru.ru_maxrss;
  g_child_cpu += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return r;
}

// ---- Python torch.load(weights_only=True) ----

// One torch.load of each file in a fresh interpreter (the import is not timed), as a user pays it: a
// process that loads a model once gets fresh memory from the kernel for every tensor. (Repeating loads
// inside one interpreter would reuse freed heap pages and time a state no user is in.)
const char* kPythonScript = R"PY(
import json, os, resource, sys, time
t_import = time.perf_counter()
import torch
t_import = time.perf_counter() - t_import
files, cold = sys.argv[1:3], sys.argv[3] == "1"
if cold:
    for f in files:
        fd = os.open(f, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
keep = []
t, c = time.perf_counter(), time.process_time()
for f in files:
    keep.append(torch.load(f, map_location="cpu", weights_only=True))
wall, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"time": wall, "cpu": cpu, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                  "import_s": t_import, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
)PY";

// ---- memory bandwidth (read), one and two threads ----

double read_bandwidth(int threads, size_t bytes) {
  std::vector<uint64_t> buf(bytes / 8, 1);
  auto pass = [&](size_t lo, size_t hi, uint64_t* sink) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = lo; i + 4 <= hi; i += 4) {
      a0 += buf[i];
      a1 += buf[i + 1];
      a2 += buf[i + 2];
      a3 += buf[i + 3];
    }
    *sink = a0 + a1 + a2 + a3;
  };
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<uint64_t> sinks(static_cast<size_t>(threads));
    auto t0 = Clock::now();
    std::vector<std::thread> ts;
    size_t per = buf.size() / static_cast<size_t>(threads);
    for (int t = 0; t < threads; ++t)
      ts.emplace_back(pass, per * static_cast<size_t>(t), per * static_cast<size_t>(t + 1), &sinks[static_cast<size_t>(t)]);
    for (auto& t : ts) t.join();
    best = std::min(best, seconds_since(t0));
    if (sinks[0] == 42) std::fprintf(stderr, " ");
  }
  return static_cast<double>(bytes) / best;
}

#ifdef MGCHECK_BENCH_TORCH
// What a careful user does before torch::pickle_load: one sized read of the whole file.
std::vector<char> slurp(const std::string& path) {
  std::vector<char> bytes(file_size(path));
  std::ifstream in(path, std::ios::binary);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

// The typed configs of the benchmark model, through mgcheck's own reader.
struct Configs {
  mgcheck::format::LmConfig lm;
  mgcheck::format::CompressionConfig compression;
};
std::optional<Configs> read_configs(const std::string& lm_path, const std::string& comp_path) {
  using namespace mgcheck::format;
  Configs c;
  for (int which = 0; which < 2; ++which) {
    auto src = MappedFile::open(which == 0 ? lm_path : comp_path);
    if (!src) return std::nullopt;
    Findings f;
    ReadOptions ro;
    ro.verify_crc = false;
    auto ck = read_checkpoint(**src, Limits{}, ro, f);
    if (!ck) return std::nullopt;
    ValueId id = ck->pickle.arena.dict_get(ck->pickle.root, "xp.cfg");
    if (!ck->pickle.arena.is_string(id)) return std::nullopt;
    auto cfg = XpCfg::parse(ck->pickle.arena[id].s, "xp.cfg");
    if (!cfg) return std::nullopt;
    if (which == 0) {
      auto l = lm_config_from_xpcfg(*cfg, f);
      if (!l) return std::nullopt;
      c.lm = *l;
    } else {
      auto e = compression_config_from_xpcfg(*cfg, f);
      if (!e) return std::nullopt;
      c.compression = *e;
    }
  }
  return c;
}

// mgcheck's model build: file → mapped, strictly read (CRCs on), LM and EnCodec built and loaded.
struct Built {
  std::unique_ptr<mgcheck::format::MappedFile> lm_src, comp_src;
  std::optional<mgcheck::format::Checkpoint> lm_ck, comp_ck;
  std::optional<mgcheck::model::LmModel> lm;
  std::optional<mgcheck::model::Encodec> encodec;
};
bool mgcheck_build(const std::string& lm_path, const std::string& comp_path, const Configs& cfg,
                   torch::Dtype dtype, Built& out) {
  using namespace mgcheck;
  format::Findings f;
  auto a = format::MappedFile::open(lm_path);
  auto b = format::MappedFile::open(comp_path);
  if (!a || !b) return false;
  out.lm_src = std::move(a).value();
  out.comp_src = std::move(b).value();
  auto ca = format::read_checkpoint(*out.lm_src, format::Limits{}, format::ReadOptions{}, f);
  auto cb = format::read_checkpoint(*out.comp_src, format::Limits{}, format::ReadOptions{}, f);
  if (!ca || !cb) return false;
  out.lm_ck = std::move(ca).value();
  out.comp_ck = std::move(cb).value();
  model::WeightMap wl(*out.lm_ck, "best_state");
  model::WeightMap we(*out.comp_ck, "best_state");
  model::LmOptions lo;
  lo.dtype = dtype;
  auto lm = model::LmModel::build(cfg.lm, wl, lo, f);
  model::EncodecOptions eo;
  auto ec = model::Encodec::build(cfg.compression, we, eo, f);
  if (!lm || !ec) {
    for (const auto& x : f.items())
      if (x.severity == format::Severity::error) std::fprintf(stderr, "build: %s %s\n", x.code.c_str(), x.message.c_str());
    return false;
  }
  out.lm.emplace(std::move(lm).value());
  out.encodec.emplace(std::move(ec).value());
  return true;
}

// The naive path: bytes → torch::pickle_load → modules constructed → parameters copied by name.
struct NaiveBuilt {
  mgcheck::bench::NaiveLm lm{nullptr};
  std::shared_ptr<torch::nn::Module> encodec;
};
size_t copy_state(torch::nn::Module& m, const std::string& path, bool flat_names) {
  auto bytes = slurp(path);
  auto root = torch::pickle_load(bytes).toGenericDict();
  auto state = root.at("best_state").toGenericDict();
  std::map<std::string, torch::Tensor> by_name;
  for (const auto& kv : state) {
    std::string k = kv.key().toStringRef();
    if (flat_names) std::replace(k.begin(), k.end(), '.', '_');
    by_name[k] = kv.value().toTensor();
  }
  torch::NoGradGuard ng;
  size_t copied = 0;
  for (auto& p : m.named_parameters(true)) {
    auto it = by_name.find(p.key());
    if (it == by_name.end()) continue;
    p.value().copy_(it->second);
    ++copied;
  }
  return copied;
}
#endif

std::string fmt(double v, const char* f = "%.3f") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void print_table(std::vector<Row>& rows) {
  // Ratio to the first row of the same group and cache state (the baseline).
  std::map<std::string, const Row*> base;
  std::printf("\n%-66s %-5s %9s %8s %8s %7s %9s %7s %3s %5s\n", "row", "cache", "median s", "spread%", "GB/s",
              "ratio", "cpu s", "cpu rat", "n", "load");
  for (auto& r : rows) {
    std::string key = r.group + "/" + r.cache;
    if (!base.count(key)) base[key] = &r;
    const Row& b = *base[key];
    double med = r.median();
    double spread = med > 0 ? 100.0 * (r.max() - r.min()) / med : 0;
    double gbs = r.bytes && med > 0 ? static_cast<double>(r.bytes) / med / 1e9 : 0;
    double ratio = b.median() > 0 ? med / b.median() : 0;
    double cpu_ratio = b.cpu_median() > 0 && !r.cpu.empty() ? r.cpu_median() / b.cpu_median() : 0;
    r.extra["ratio_to_group_baseline"] = ratio;
    if (cpu_ratio > 0) r.extra["cpu_ratio_to_group_baseline"] = cpu_ratio;
    std::printf("%-66s %-5s %9s %8s %8s %7s %9s %7s %3zu %5.1f\n", r.name.c_str(), r.cache.c_str(),
                fmt(med, "%.4f").c_str(), fmt(spread, "%.1f").c_str(), gbs > 0 ? fmt(gbs, "%.2f").c_str() : "-",
                fmt(ratio, "%.2fx").c_str(), r.cpu.empty() ? "-" : fmt(r.cpu_median(), "%.3f").c_str(),
                cpu_ratio > 0 ? fmt(cpu_ratio, "%.2fx").c_str() : "-", r.secs.size(), r.load_after);
  }
}

// `mgcheck quick FILE` (one LM file) for files of growing size, warm cache: time should grow linearly in
// bytes and the anonymous peak RSS stay flat (the mapped file's pages are page cache, not heap).
int run_scaling(const Options& o) {
  json rows = json::array();
  std::printf("%-60s %10s %10s %9s %10s %14s %14s %6s\n", "file", "GB", "median s", "spread %", "GB/s",
              "peak anon MB", "maxrss MB", "load");
  for (const auto& f : o.scaling) {
    const uint64_t bytes = file_size(f);
    warm_cache({f});
    std::vector<double> secs;
    long anon = 0, maxrss = 0;
    const double load0 = mgcheck::bench::load_average_1m();
    for (int i = 0; i < o.reps; ++i) {
      auto c = run_child({MGCHECK_CLI, "quick", f});
      secs.push_back(c.secs);
      anon = std::max(anon, c.peak_anon_kb);
      maxrss = std::max(maxrss, c.maxrss_kb);
    }
    Row r;
    r.secs = secs;
    const double med = r.median();
    const double load1 = mgcheck::bench::load_average_1m();
    std::printf("%-60s %10.3f %10.3f %9.1f %10.2f %14.1f %14.1f %6.1f\n", f.c_str(), static_cast<double>(bytes) / 1e9,
                med, 100.0 * (r.max() - r.min()) / med, static_cast<double>(bytes) / med / 1e9,
                static_cast<double>(anon) / 1024.0, static_cast<double>(maxrss) / 1024.0, load1);
    rows.push_back({{"file", f}, {"bytes", bytes}, {"seconds", secs}, {"median_s", med},
                    {"peak_anon_rss_MB", static_cast<double>(anon) / 1024.0},
                    {"peak_rss_incl_mapped_file_MB", static_cast<double>(maxrss) / 1024.0},
                    {"load_before", load0}, {"load_after", load1}});
  }
  json env = json::object();
  for (const auto& [k, v] : mgcheck::bench::machine_context()) env[k] = v;
  env["rss_method"] =
      "peak anon: RssAnon of /proc/PID/status sampled every ~2 ms by the parent; maxrss: wait4 ru_maxrss "
      "(includes the file pages of the read-only mapping that were touched)";
  std::ofstream(o.json_out) << json({{"environment", env}, {"scaling", rows}}).dump(2) << "\n";
  std::fprintf(stderr, "wrote %s\n", o.json_out.c_str());
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: mgcheck-compare [--model DIR] [--reps N] [--json FILE] [--threads N] [--torch-threads N] [--no-cold]\n"
               "       [--only quick,io,python,libtorch,build,decode,encodec,bandwidth] [--decode-steps N] [--python PATH]\n"
               "       mgcheck-compare --scaling FILE... [--reps N] [--json FILE]   (options before --scaling)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(usage());
      return argv[++i];
    };
    if (a == "--model") o.model = next();
    else if (a == "--reps") o.reps = std::max(1, std::stoi(next()));
    else if (a == "--json") o.json_out = next();
    else if (a == "--threads") o.threads = std::max(1, std::stoi(next()));
    else if (a == "--torch-threads") o.torch_threads = std::max(1, std::stoi(next()));
    else if (a == "--no-cold") o.cold = false;
    else if (a == "--python") o.python = next();
    else if (a == "--decode-steps") o.decode_steps = std::max(2, std::stoi(next()));
    else if (a == "--scaling") {
      while (i + 1 < argc) o.scaling.push_back(argv[++i]);
    } else if (a == "--only") {
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) o.only.insert(item);
    } else return usage();
  }
  if (!o.scaling.empty()) return run_scaling(o);
  const std::string lm = o.model + "/state_dict.bin", comp = o.model + "/compression_state_dict.bin";
  const std::vector<std::string> files = {lm, comp};
  const uint64_t total = file_size(lm) + file_size(comp);
  if (total == 0) {
    std::fprintf(stderr, "mgcheck-compare: no export under %s (run bench/make-model first)\n", o.model.c_str());
    return 2;
  }
  json env = json::object();
  for (const auto& [k, v] : mgcheck::bench::machine_context()) env[k] = v;
  env["reps"] = o.reps;
  env["files"] = {{"lm", lm}, {"lm_bytes", file_size(lm)}, {"compression", comp}, {"compression_bytes", file_size(comp)}};
#ifdef MGCHECK_BENCH_TORCH
  env["libtorch_version"] = TORCH_VERSION;
  env["threads"] = mgcheck::model::configure_threads(o.torch_threads, o.threads);
  env["torch_intra_op_threads"] = at::get_num_threads();
#endif
  std::fprintf(stderr, "mgcheck-compare: %s (%.3f GB), %d repetitions, load %s\n", o.model.c_str(),
               static_cast<double>(total) / 1e9, o.reps, mgcheck::bench::load_average().c_str());

  Runner run(o);
  std::vector<std::string> caches = {"warm"};
  if (o.cold) caches.push_back("cold");

  if (wanted(o, "bandwidth")) {
    Row r1, r2;
    r1.name = "memory read bandwidth, 1 thread (1 GiB buffer)";
    r2.name = "memory read bandwidth, 2 threads (1 GiB buffer)";
    r1.group = r2.group = "bandwidth";
    r1.cache = r2.cache = "-";
    r1.load_before = r2.load_before = mgcheck::bench::load_average_1m();
    double bw1 = read_bandwidth(1, 1ull << 30), bw2 = read_bandwidth(2, 1ull << 30);
    r1.bytes = r2.bytes = 1ull << 30;
    r1.secs = {static_cast<double>(r1.bytes) / bw1};
    r2.secs = {static_cast<double>(r2.bytes) / bw2};
    r1.load_after = r2.load_after = mgcheck::bench::load_average_1m();
    env["memory_read_GBps_1thread"] = bw1 / 1e9;
    env["memory_read_GBps_2threads"] = bw2 / 1e9;
    run.add(r1);
    run.add(r2);
  }

  for (const auto& cache : caches) {
    const bool cold = cache == "cold";
    auto prepare = [&] {
      if (cold) drop_cache(files);
    };
    if (!cold) warm_cache(files);
    const std::string group = "quick-vs-peers";
    if (wanted(o, "quick")) {
      // The console run computes no SHA-256 (only the JSON report carries files[].sha256); --json adds it
      // on a second thread.
      const std::vector<std::pair<std::string, std::vector<std::string>>> variants = {
          {"mgcheck quick (CLI, every CRC + NaN/Inf scan)", {MGCHECK_CLI, "quick", o.model}},
          {"mgcheck quick --json (the same + SHA-256 of both files)",
           {MGCHECK_CLI, "quick", o.model, "--json", "/dev/null"}}};
      for (const auto& [name, args] : variants) {
        long peak_anon = 0, maxrss = 0;
        int status = 0;
        Row& row = run.time(name, group, cache, total,
                            [&, cmd = args] {
                              auto c = run_child(cmd);
                              peak_anon = std::max(peak_anon, c.peak_anon_kb);
                              maxrss = std::max(maxrss, c.maxrss_kb);
                              status = c.status;
                            },
                            prepare);
        // Filled after the runs (an assignment's right side would be evaluated before them).
        row.extra = {{"peak_anon_rss_MB", static_cast<double>(peak_anon) / 1024.0},
                     {"peak_rss_incl_mapped_file_MB", static_cast<double>(maxrss) / 1024.0},
                     {"exit_status", WIFEXITED(status) ? WEXITSTATUS(status) : -1}};
        std::fprintf(stderr, "    peak anonymous RSS %.1f MB, peak RSS with the mapped file %.1f MB\n",
                     static_cast<double>(peak_anon) / 1024.0, static_cast<double>(maxrss) / 1024.0);
      }
    }
    if (wanted(o, "python")) {
      Row r;
      r.name = "python torch.load(weights_only=True), both files";
      r.group = group;
      r.cache = cache;
      r.bytes = total;
      r.load_before = mgcheck::bench::load_average_1m();
      double import_s = 0, maxrss = 0;
      for (int rep = 0; rep < o.reps; ++rep) {
        std::string out;
        run_child({o.python, "-c", kPythonScript, lm, comp, cold ? "1" : "0"}, &out);
        try {
          json j = json::parse(out);
          r.secs.push_back(j["time"].get<double>());
          r.cpu.push_back(j["cpu"].get<double>());
          import_s = j["import_s"].get<double>();
          maxrss = std::max(maxrss, j["maxrss_kb"].get<double>() / 1024.0);
          env["python_torch_version"] = j["torch"];
          r.extra["torch_threads"] = j["torch_threads"];
        } catch (const std::exception& e) {
          std::fprintf(stderr, "python row failed: %s\n%s\n", e.what(), out.c_str());
        }
      }
      r.load_after = mgcheck::bench::load_average_1m();
      r.extra["import_s_untimed"] = import_s;
      r.extra["maxrss_MB"] = maxrss;
      if (!r.secs.empty()) run.add(r);
    }
#ifdef MGCHECK_BENCH_TORCH
    if (wanted(o, "libtorch")) {
      run.time("libtorch torch::pickle_load (read into memory + load), both files", group, cache, total,
               [&] {
                 for (const auto& f : files) {
                   auto bytes = slurp(f);
                   auto v = torch::pickle_load(bytes);
                   if (!v.isGenericDict()) std::fprintf(stderr, "pickle_load: not a dict\n");
                 }
               },
               prepare);
    }
#endif
    if (wanted(o, "io")) {
      run.time("floor: read(2) + libdeflate CRC-32, both files", group, cache, total,
               [&] { read_and_crc(files, true); }, prepare);
      run.time("floor: read(2) only, both files", group, cache, total, [&] { read_and_crc(files, false); }, prepare);
      run.time("mmap + libdeflate CRC-32, both files", group, cache, total, [&] { mmap_crc(files, false); }, prepare);
      run.time("mmap + zlib crc32, both files", group, cache, total, [&] { mmap_crc(files, true); }, prepare);
      run.time("mmap(MAP_POPULATE) + libdeflate CRC-32, both files", group, cache, total,
               [&] { mmap_populate_crc(files); }, prepare);
    }
  }

#ifdef MGCHECK_BENCH_TORCH
  std::optional<Configs> cfgs;
  if (wanted(o, "build") || wanted(o, "decode") || wanted(o, "encodec")) cfgs = read_configs(lm, comp);
  if (cfgs && wanted(o, "build")) {
    warm_cache(files);
    const int reps = std::max(1, std::min(o.reps, 3));
    bool ok = true;
    run.time("model build: mgcheck (file → LM fp32 + EnCodec, CRCs on)", "build", "warm", total,
             [&] {
               Built b;
               ok = mgcheck_build(lm, comp, *cfgs, torch::kFloat32, b) && ok;
             },
             {}, reps);
    run.rows().back().extra["ok"] = ok;
    run.time("model build: naive libtorch (construct modules + pickle_load + copy by name)", "build", "warm", total,
             [&] {
               NaiveBuilt nb;
               nb.lm = mgcheck::bench::NaiveLm(cfgs->lm);
               nb.encodec = mgcheck::bench::naive_flat_module(mgcheck::format::expected_compression_tensors(cfgs->compression));
               size_t n = copy_state(*nb.lm, lm, false) + copy_state(*nb.encodec, comp, true);
               if (n == 0) std::fprintf(stderr, "naive build copied nothing\n");
             },
             {}, reps);
  }
  if (cfgs && wanted(o, "decode")) {
    warm_cache(files);
    const int64_t B = 2;  // classifier-free guidance: conditional + null
    const int64_t d = cfgs->lm.dim, L = cfgs->lm.num_layers;
    const int steps = o.decode_steps;
    auto tokens = torch::randint(0, cfgs->lm.card, {B, cfgs->lm.n_q, 1}, torch::kLong);
    auto hidden = torch::randn({B, 16, 768});
    auto mask = torch::ones({B, 16}, torch::kLong);
    // Weight bytes streamed per step in fp32: self-attention in/out, cross q/out (cross k/v are cached),
    // FFN, output heads (musicgen-model.md §3).
    const double step_bytes = 4.0 * (static_cast<double>(L) * (14.0 * d * d) +
                                     static_cast<double>(cfgs->lm.n_q * cfgs->lm.card * d));
    // The floor uses the best read bandwidth measured (1 or 2 threads): the most demanding target.
    double bw = std::max(env.value("memory_read_GBps_1thread", 0.0), env.value("memory_read_GBps_2threads", 0.0)) * 1e9;
    if (bw <= 0) bw = std::max(read_bandwidth(1, 1ull << 30), read_bandwidth(2, 1ull << 30));
    Row floor;
    floor.name = "floor: fp32 weight streaming per step (" + fmt(step_bytes / 1e9, "%.2f") + " GB at " +
                 fmt(bw / 1e9, "%.1f") + " GB/s)";
    floor.group = "decode-fp32";
    floor.cache = "-";
    floor.secs = {step_bytes / bw};
    floor.load_before = floor.load_after = mgcheck::bench::load_average_1m();
    run.add(floor);
    for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      Built b;
      if (!mgcheck_build(lm, comp, *cfgs, dtype, b)) {
        std::fprintf(stderr, "decode: mgcheck build failed\n");
        continue;
      }
      torch::InferenceMode im;
      auto cond = b.lm->t5_condition("description", hidden.to(dtype), mask);
      mgcheck::model::ConditionList conds = {{"description", cond}};
      auto stream = b.lm->begin_stream(conds, B, steps + 8);
      for (int i = 0; i < 3; ++i) b.lm->step(stream, tokens);  // warm up allocations
      const std::string label = dtype == torch::kFloat32 ? "fp32" : "bf16";
      run.time("decode step, batch 2: mgcheck LmModel " + label, "decode-" + (label == "fp32" ? std::string("fp32") : "bf16"),
               "-", static_cast<uint64_t>(step_bytes / (dtype == torch::kFloat32 ? 1 : 2)),
               [&] { b.lm->step(stream, tokens); }, {}, steps);
    }
    {
      mgcheck::bench::NaiveLm naive(cfgs->lm);
      copy_state(*naive, lm, false);
      torch::NoGradGuard ng;
      auto cond = naive->output_proj->forward(hidden);
      auto st = naive->begin(cond);
      for (int i = 0; i < 3; ++i) naive->step(st, tokens);
      run.time("decode step, batch 2: naive libtorch fp32 (cat KV cache)", "decode-fp32", "-",
               static_cast<uint64_t>(step_bytes), [&] { naive->step(st, tokens); }, {}, steps);
    }
  }
  if (cfgs && wanted(o, "encodec")) {
    Built b;
    if (mgcheck_build(lm, comp, *cfgs, torch::kFloat32, b)) {
      torch::InferenceMode im;
      auto codes = torch::randint(0, cfgs->compression.rvq_bins, {1, cfgs->compression.rvq_n_q, b.encodec->frame_rate()},
                                  torch::kLong);
      b.encodec->decode(codes);
      run.time("EnCodec decode of 1 s (fp32): mgcheck", "encodec", "-", 0, [&] { b.encodec->decode(codes); });
    }
  }
#endif

  print_table(run.rows());
  json rows = json::array();
  for (const auto& r : run.rows()) {
    rows.push_back({{"name", r.name}, {"group", r.group}, {"cache", r.cache}, {"seconds", r.secs},
                    {"median_s", r.median()}, {"cpu_seconds", r.cpu}, {"cpu_median_s", r.cpu_median()}, {"min_s", r.min()}, {"max_s", r.max()}, {"bytes", r.bytes},
                    {"load_before", r.load_before}, {"load_after", r.load_after}, {"extra", r.extra}});
  }
  env["load_average_end"] = mgcheck::bench::load_average();
  json doc = {{"environment", env}, {"rows", rows}};
  std::ofstream(o.json_out) << doc.dump(2) << "\n";
  std::fprintf(stderr, "wrote %s\n", o.json_out.c_str());
  return 0;
}

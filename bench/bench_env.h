// Shared by the benchmark suites and mgcheck-compare: where the benchmark model lives, and the machine
// facts recorded with every figure (CPU, load average, thread settings) — the machines are shared and
// noisy, so a number without its context is not comparable.
#pragma once
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace mgcheck::bench {

// The export directory under test: $MGCHECK_BENCH_MODEL, else the build tree's generated musicgen-small.
inline std::string model_dir() {
  if (const char* e = std::getenv("MGCHECK_BENCH_MODEL"); e && *e) return e;
  return MGCHECK_BENCH_MODEL_DIR;
}
inline std::string lm_file() { return model_dir() + "/state_dict.bin"; }
inline std::string compression_file() { return model_dir() + "/compression_state_dict.bin"; }

inline uint64_t file_bytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      return p == std::string::npos ? line : line.substr(p + 2);
    }
  }
  return "unknown";
}

inline std::string load_average() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "unknown";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
  return buf;
}

inline double load_average_1m() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : -1.0;
}

inline std::string env_or(const char* name, const char* fallback) {
  const char* e = std::getenv(name);
  return e ? e : fallback;
}

// The facts every run records (mgcheck-compare writes the same keys into its JSON).
inline std::vector<std::pair<std::string, std::string>> machine_context() {
  return {
      {"mgcheck_cpu_model", cpu_model()},
      {"mgcheck_online_cpus", std::to_string(sysconf(_SC_NPROCESSORS_ONLN))},
      {"mgcheck_load_average", load_average()},
      {"mgcheck_OMP_NUM_THREADS", env_or("OMP_NUM_THREADS", "(unset)")},
      {"mgcheck_OPENBLAS_NUM_THREADS", env_or("OPENBLAS_NUM_THREADS", "(unset)")},
      {"mgcheck_MKL_NUM_THREADS", env_or("MKL_NUM_THREADS", "(unset)")},
      {"mgcheck_model_dir", model_dir()},
  };
}

// Peak resident set of this process (kB), from /proc/self/status VmHWM.
inline long peak_rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

}  // namespace mgcheck::bench

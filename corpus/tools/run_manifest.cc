// run_manifest: runs every case of a make_corrupt manifest through the built `mgcheck` binary and
// requires each to get exactly its verdict (exit code) and to report its finding code in the JSON
// findings, within a CPU-time cap (1 s) and an address-space cap (256 MiB, RLIMIT_AS in the child).
//
//   run_manifest MGCHECK_BINARY MANIFEST_DIR [--no-memory-cap] [--cpu-cap SECONDS] [--verbose]
//
// ASan/UBSan builds reserve terabytes of shadow address space, so they pass --no-memory-cap (the
// sanitizer itself then catches overruns). Verdict and code columns may list alternatives separated by
// '|'. Exit 0 when every case matches; otherwise every mismatch is printed with what happened.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

struct Case {
  std::string kind, command, path, verdict, code, args;
  std::string xfail;  // a known mgcheck bug (reported, not yet fixed): why this case does not pass yet
};

struct Outcome {
  int exit_code = -1;
  int signal = 0;
  bool wall_timeout = false;
  double cpu_s = 0;
  long max_rss_kb = 0;
  std::string stdout_text;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep))
    if (!cur.empty()) out.push_back(cur);
  return out;
}

int verdict_exit(const std::string& v) {
  if (v == "pass") return 0;
  if (v == "fail") return 1;
  if (v == "unsafe") return 2;
  return -100;
}

Outcome run_one(const std::string& exe, const Case& c, const fs::path& dir, bool memory_cap, double wall_cap_s) {
  Outcome o;
  fs::path out_file = fs::temp_directory_path() / ("mgcheck-manifest-" + std::to_string(getpid()) + ".json");
  std::vector<std::string> argv_s = {exe, c.command, (dir / c.path).string(), "--json", "-"};
  for (const auto& a : split(c.args, ' ')) argv_s.push_back(a);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) dup2(fd, 1);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    if (memory_cap) {
      rlimit as{256ull << 20, 256ull << 20};
      setrlimit(RLIMIT_AS, &as);
    }
    rlimit cpu{10, 11};  // hard stop for a hang; the 1 s cap is checked from rusage below
    setrlimit(RLIMIT_CPU, &cpu);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  auto start = std::chrono::steady_clock::now();
  int status = 0;
  rusage ru{};
  for (;;) {
    pid_t r = wait4(pid, &status, WNOHANG, &ru);
    if (r == pid) break;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > wall_cap_s) {
      kill(pid, SIGKILL);
      wait4(pid, &status, 0, &ru);
      o.wall_timeout = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) o.signal = WTERMSIG(status);
  o.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  o.max_rss_kb = ru.ru_maxrss;
  std::ifstream in(out_file);
  o.stdout_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  fs::remove(out_file);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: run_manifest MGCHECK_BINARY MANIFEST_DIR [--no-memory-cap] [--cpu-cap S] [--verbose]\n");
    return 3;
  }
  std::string exe = fs::absolute(argv[1]).string();
  fs::path dir = argv[2];
  bool memory_cap = true, verbose = false;
  double cpu_cap = 1.0;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-memory-cap") memory_cap = false;
    else if (a == "--verbose") verbose = true;
    else if (a == "--cpu-cap" && i + 1 < argc) cpu_cap = std::atof(argv[++i]);
  }
  // quick resolves Hugging Face names through the cache: point it at nothing so the host's cache
  // cannot change a verdict.
  setenv("HF_HUB_CACHE", (dir / "no-hf-cache").c_str(), 1);
  setenv("AUDIOCRAFT_CACHE_DIR", (dir / "no-audiocraft-cache").c_str(), 1);

  std::ifstream in(dir / "manifest.tsv");
  if (!in) {
    std::fprintf(stderr, "run_manifest: no manifest.tsv in %s (run make_corrupt first)\n", dir.c_str());
    return 3;
  }
  std::vector<Case> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    size_t start = 0;
    for (;;) {
      size_t tab = line.find('\t', start);
      f.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    f.resize(7);
    cases.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6]});
  }
  size_t failures = 0, xfails = 0;
  double max_cpu = 0;
  long max_rss = 0;
  std::string max_cpu_case, max_rss_case;
  std::set<std::string> kinds;
  for (const auto& c : cases) {
    kinds.insert(c.kind);
    Outcome o = run_one(exe, c, dir, memory_cap, 10.0 + 10 * cpu_cap);
    if (c.xfail.empty() && o.cpu_s > max_cpu) max_cpu = o.cpu_s, max_cpu_case = c.path;
    if (c.xfail.empty() && o.max_rss_kb > max_rss) max_rss = o.max_rss_kb, max_rss_case = c.path;
    std::vector<std::string> problems;
    std::set<std::string> codes;
    std::string verdict = "?";
    try {
      auto j = nlohmann::json::parse(o.stdout_text);
      for (const auto& f : j.at("findings")) codes.insert(f.at("code").get<std::string>());
      verdict = j.value("verdict", "?");
    } catch (const std::exception&) {
      problems.push_back("no JSON report on stdout");
    }
    if (o.wall_timeout) problems.push_back("hung (killed after the wall-clock guard)");
    if (o.signal) problems.push_back("killed by signal " + std::to_string(o.signal));
    bool verdict_ok = false;
    for (const auto& v : split(c.verdict, '|')) verdict_ok |= o.exit_code == verdict_exit(v);
    if (!verdict_ok)
      problems.push_back("exit " + std::to_string(o.exit_code) + " (" + verdict + "), expected " + c.verdict);
    if (c.code != "-") {
      bool code_ok = false;
      for (const auto& code : split(c.code, '|')) code_ok |= codes.count(code) > 0;
      if (!code_ok) problems.push_back("no finding " + c.code);
    }
    if (o.cpu_s > cpu_cap) problems.push_back("took " + std::to_string(o.cpu_s) + " s CPU (cap " + std::to_string(cpu_cap) + ")");
    // A known bug is expected to fail; once it passes, the marker must go (strict, like pytest's xfail).
    const char* tag = problems.empty() ? "ok  " : "FAIL";
    if (!c.xfail.empty()) {
      tag = problems.empty() ? "XPASS" : "XFAIL";
      if (problems.empty()) problems.push_back("passes now: remove its known-bug marker (" + c.xfail + ")");
      else problems.push_back("known bug: " + c.xfail);
    }
    if (!problems.empty() || verbose) {
      std::string all;
      for (const auto& code : codes) all += code + " ";
      std::printf("%s %s [%s] %s: ", tag, c.kind.c_str(), c.command.c_str(), c.path.c_str());
      for (const auto& p : problems) std::printf("%s; ", p.c_str());
      std::printf("codes: %s(%.3f s, %ld KiB)\n", all.c_str(), o.cpu_s, o.max_rss_kb);
    }
    if (std::string(tag) == "XFAIL") ++xfails;
    else failures += !problems.empty();
  }
  std::printf("run_manifest: %zu cases, %zu kinds, %zu failed, %zu known bugs; max CPU %.3f s (%s), max RSS %ld KiB (%s) outside known bugs%s\n",
              cases.size(), kinds.size(), failures, xfails, max_cpu, max_cpu_case.c_str(), max_rss, max_rss_case.c_str(),
              memory_cap ? ", address space capped at 256 MiB" : ", no address-space cap");
  return failures == 0 ? 0 : 1;
}

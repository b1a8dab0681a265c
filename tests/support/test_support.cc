#include "test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace mgcheck::test {
namespace fs = std::filesystem;

std::string source_dir() { return MGCHECK_SOURCE_DIR; }
std::string binary_dir() { return MGCHECK_BINARY_DIR; }
std::string corpus_dir() { return source_dir() + "/corpus"; }
std::string fixture_dir(const std::string& name) { return corpus_dir() + "/audiocraft-tiny/" + name; }
std::string mgcheck_binary() { return binary_dir() + "/harness/mgcheck"; }

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path base = fs::path(binary_dir()) / "Testing" / "tmp";
  fs::create_directories(base);
  path_ = (base / (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++))).string();
  fs::remove_all(path_);
  fs::create_directories(path_);
}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

RunResult run_process(const std::vector<std::string>& argv, const std::string& stdin_text) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (pipe(out_pipe) || pipe(err_pipe) || pipe(in_pipe)) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], in_pipe[0], in_pipe[1]})
    posix_spawn_file_actions_addclose(&fa, fd);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(in_pipe[0]);
  RunResult r;
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    close(in_pipe[1]);
    r.err = std::string("spawn failed: ") + std::strerror(rc);
    return r;
  }
  size_t written = 0;
  if (stdin_text.empty()) {
    close(in_pipe[1]);
    in_pipe[1] = -1;
  } else {
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  }
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    pollfd p[3];
    int n = 0;
    if (out_open) p[n++] = {out_pipe[0], POLLIN, 0};
    if (err_open) p[n++] = {err_pipe[0], POLLIN, 0};
    if (in_pipe[1] >= 0) p[n++] = {in_pipe[1], POLLOUT, 0};
    if (poll(p, n, -1) < 0) break;
    for (int i = 0; i < n; ++i) {
      if (p[i].revents == 0) continue;
      if (p[i].fd == in_pipe[1]) {
        ssize_t w = write(in_pipe[1], stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == stdin_text.size()) {
          close(in_pipe[1]);
          in_pipe[1] = -1;
        }
        continue;
      }
      ssize_t k = read(p[i].fd, buf, sizeof buf);
      if (k <= 0) {
        if (p[i].fd == out_pipe[0]) out_open = false; else err_open = false;
      } else if (p[i].fd == out_pipe[0]) {
        r.out.append(buf, static_cast<size_t>(k));
      } else {
        r.err.append(buf, static_cast<size_t>(k));
      }
    }
  }
  if (in_pipe[1] >= 0) close(in_pipe[1]);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

RunResult run_python(const std::string& code, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", code};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

bool python_torch_available() {
  static int cached = -1;
  if (cached < 0) cached = run_python("import torch").exit_code == 0 ? 1 : 0;
  return cached == 1;
}

bool python_required() {
  const char* v = std::getenv("MGCHECK_REQUIRE_PYTHON");
  return v != nullptr && std::string(v) == "1";
}

std::string python_skip_log() {
  const char* v = std::getenv("MGCHECK_PYTHON_SKIP_LOG");
  if (v != nullptr && *v != '\0') return v;
  return binary_dir() + "/Testing/python-oracle-skips.log";
}

void record_python_skip(const std::string& why) {
  std::string line;
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
    line = std::string(info->test_suite_name()) + "." + info->name();
  line += ": " + why + "\n";
  std::error_code ec;
  fs::create_directories(fs::path(python_skip_log()).parent_path(), ec);
  // One write(2) of one line with O_APPEND: test processes that ctest runs in parallel do not interleave.
  int fd = ::open(python_skip_log().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}
void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}
std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace mgcheck::test

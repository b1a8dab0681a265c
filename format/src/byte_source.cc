#include "mgcheck/format/byte_source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mgcheck/format/checked.h"

namespace mgcheck::format {

bool ByteSource::read_at(uint64_t off, uint64_t len, std::span<const uint8_t>& out) const noexcept {
  if (!fits(off, len, size())) return false;
  out = bytes().subspan(static_cast<size_t>(off), static_cast<size_t>(len));
  return true;
}

bool ByteSource::copy_out(uint64_t off, std::span<uint8_t> out) const noexcept {
  if (!fits(off, out.size(), size())) return false;
  if (!out.empty()) std::memcpy(out.data(), bytes().data() + off, out.size());
  return true;
}

MemorySource::MemorySource(std::vector<uint8_t> bytes, std::string name)
    : owned_(std::move(bytes)), view_(owned_), name_(std::move(name)) {}

MemorySource::MemorySource(const uint8_t* data, size_t size, std::string name)
    : view_(data, size), name_(std::move(name)) {}

namespace {
Finding io_error(const std::string& code, const std::string& path, const std::string& what,
                 const std::string& hint) {
  Finding f = make_error(code, what + ": " + path + " (" + std::strerror(errno) + ")", hint);
  f.file = path;
  return f;
}
}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("MG-IO-OPEN", path, "cannot open", "check the path and its permissions");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Finding f = io_error("MG-IO-OPEN", path, "cannot stat", "check the path and its permissions");
    ::close(fd);
    return f;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    Finding f = make_error("MG-IO-OPEN", "not a regular file: " + path,
                           "pass a file (or, for export checks, a directory holding the export files)");
    f.file = path;
    return f;
  }
  std::unique_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<uint64_t>(st.st_size);
  if (m->size_ > 0) {
    void* a = ::mmap(nullptr, static_cast<size_t>(m->size_), PROT_READ, MAP_PRIVATE, fd, 0);
    if (a == MAP_FAILED) {
      Finding f = io_error("MG-IO-MMAP", path, "cannot map", "check free address space and the file system");
      ::close(fd);
      return f;
    }
    m->addr_ = a;
  }
  m->fd_ = fd;  // kept for copy_out; the size was fixed at open time
  return m;
}

MappedFile::~MappedFile() {
  if (addr_ != nullptr) ::munmap(addr_, static_cast<size_t>(size_));
  if (fd_ >= 0) ::close(fd_);
}

bool MappedFile::copy_out(uint64_t off, std::span<uint8_t> out) const noexcept {
  if (!fits(off, out.size(), size_)) return false;
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace mgcheck::format

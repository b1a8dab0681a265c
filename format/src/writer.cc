// torch.save zip archives (torch-save-format.md §2.4–2.6, §7): stored records with 64-byte aligned
// data through the "FB" extra field, data descriptors, ZIP64 fields exactly when a size or offset
// reaches 0xFFFFFFFF, and the ZIP64 end records always — the layout miniz writes for torch.
// Storages are streamed from the caller's memory to the sink, never copied into a second buffer.
#include "mgcheck/format/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>

#include "mgcheck/format/container.h"
#include "pickle_writer.h"

namespace mgcheck::format {
namespace {

constexpr uint64_t k32 = 0xFFFFFFFFull;
constexpr size_t kChunk = 16u << 20;  // CRC and write granularity for big storages

void put_le(std::vector<uint8_t>& v, uint64_t x, int n) {
  for (int k = 0; k < n; ++k) v.push_back(static_cast<uint8_t>(x >> (8 * k)));
}

// Where the archive bytes go. `pos` counts archive bytes (offsets recorded in the zip).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status write(std::span<const uint8_t> b) = 0;
  uint64_t pos = 0;
};

class VectorSink final : public Sink {
 public:
  explicit VectorSink(std::vector<uint8_t>& out) : out_(out) {}
  Status write(std::span<const uint8_t> b) override {
    out_.insert(out_.end(), b.begin(), b.end());
    pos += b.size();
    return ok_status();
  }

 private:
  std::vector<uint8_t>& out_;
};

Finding write_error(const std::string& path, const std::string& what, int err) {
  Finding f = make_error("MG-IO-WRITE", what + ": " + std::strerror(err),
                         "check free space and permissions of the output directory");
  f.file = path;
  return f;
}

class FileSink final : public Sink {
 public:
  FileSink(int fd, std::string path, uint64_t start) : fd_(fd), path_(std::move(path)), file_pos_(start) {}
  Status write(std::span<const uint8_t> b) override {
    while (!b.empty()) {
      ssize_t n = ::pwrite(fd_, b.data(), std::min<size_t>(b.size(), 1u << 30), static_cast<off_t>(file_pos_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return write_error(path_, "write failed", errno);
      }
      b = b.subspan(static_cast<size_t>(n));
      file_pos_ += static_cast<uint64_t>(n);
      pos += static_cast<uint64_t>(n);
    }
    return ok_status();
  }

 private:
  int fd_;
  std::string path_;
  uint64_t file_pos_;
};

struct CentralEntry {
  std::string name;
  uint64_t header_offset = 0;
  uint64_t size = 0;
  uint32_t crc = 0;
  ZipEntryLayout layout;
};

// Writes one stored record: local header + extra, the data (CRC computed while streaming), descriptor.
Status write_record(Sink& sink, const std::string& name, std::span<const uint8_t> data, uint64_t alignment,
                    std::vector<CentralEntry>& central) {
  CentralEntry e;
  e.name = name;
  e.header_offset = sink.pos;
  e.size = data.size();
  e.layout = plan_zip_entry(e.header_offset, name.size(), e.size, alignment);
  const ZipEntryLayout& L = e.layout;

  std::vector<uint8_t> h;
  h.reserve(30 + name.size() + L.local_extra.size());
  put_le(h, 0x04034b50, 4);
  put_le(h, 0, 2);                 // version needed: 0, as miniz writes for torch
  put_le(h, L.flags, 2);
  put_le(h, 0, 2);                 // stored
  put_le(h, 0, 4);                 // DOS time + date
  put_le(h, 0, 4);                 // CRC (in the data descriptor)
  put_le(h, 0, 4);                 // compressed size (in the data descriptor)
  put_le(h, 0, 4);                 // uncompressed size (in the data descriptor)
  put_le(h, name.size(), 2);
  put_le(h, L.local_extra.size(), 2);
  h.insert(h.end(), name.begin(), name.end());
  h.insert(h.end(), L.local_extra.begin(), L.local_extra.end());
  if (auto st = sink.write(h); !st) return st;

  uint32_t crc = 0;
  for (size_t off = 0; off < data.size(); off += kChunk) {
    auto piece = data.subspan(off, std::min(kChunk, data.size() - off));
    crc = crc32(piece, crc);
    if (auto st = sink.write(piece); !st) return st;
  }
  e.crc = crc;

  if (L.descriptor_bytes > 0) {
    std::vector<uint8_t> dd;
    put_le(dd, 0x08074b50, 4);
    put_le(dd, crc, 4);
    int w = L.descriptor_bytes == 24 ? 8 : 4;
    put_le(dd, e.size, w);
    put_le(dd, e.size, w);
    if (auto st = sink.write(dd); !st) return st;
  }
  central.push_back(std::move(e));
  return ok_status();
}

Status write_central_and_end(Sink& sink, const std::vector<CentralEntry>& central) {
  const uint64_t cd_offset = sink.pos;
  std::vector<uint8_t> cd;
  for (const auto& e : central) {
    const ZipEntryLayout& L = e.layout;
    put_le(cd, 0x02014b50, 4);
    put_le(cd, 0, 2);  // version made by
    put_le(cd, 0, 2);  // version needed
    put_le(cd, L.flags, 2);
    put_le(cd, 0, 2);  // stored
    put_le(cd, 0, 4);  // time + date
    put_le(cd, e.crc, 4);
    put_le(cd, L.zip64_size ? k32 : e.size, 4);
    put_le(cd, L.zip64_size ? k32 : e.size, 4);
    put_le(cd, e.name.size(), 2);
    put_le(cd, L.central_extra.size(), 2);
    put_le(cd, 0, 2);  // comment
    put_le(cd, 0, 2);  // disk start
    put_le(cd, 0, 2);  // internal attributes
    put_le(cd, 0, 4);  // external attributes
    put_le(cd, L.zip64_offset ? k32 : e.header_offset, 4);
    cd.insert(cd.end(), e.name.begin(), e.name.end());
    // The central ZIP64 field carries the real sizes too (the local one wrote 0 for compressed).
    std::vector<uint8_t> x;
    if (L.zip64_size || L.zip64_offset) {
      put_le(x, 0x0001, 2);
      put_le(x, (L.zip64_size ? 16 : 0) + (L.zip64_offset ? 8 : 0), 2);
      if (L.zip64_size) {
        put_le(x, e.size, 8);
        put_le(x, e.size, 8);
      }
      if (L.zip64_offset) put_le(x, e.header_offset, 8);
    }
    cd.insert(cd.end(), x.begin(), x.end());
  }
  const uint64_t cd_size = cd.size();
  const uint64_t n = central.size();
  const uint64_t eocd64_offset = cd_offset + cd_size;

  std::vector<uint8_t> end;
  put_le(end, 0x06064b50, 4);  // ZIP64 end of central directory record
  put_le(end, 44, 8);
  put_le(end, 0x031E, 2);
  put_le(end, 45, 2);
  put_le(end, 0, 4);
  put_le(end, 0, 4);
  put_le(end, n, 8);
  put_le(end, n, 8);
  put_le(end, cd_size, 8);
  put_le(end, cd_offset, 8);
  put_le(end, 0x07064b50, 4);  // ZIP64 locator
  put_le(end, 0, 4);
  put_le(end, eocd64_offset, 8);
  put_le(end, 1, 4);
  put_le(end, 0x06054b50, 4);  // classic EOCD, sentinels where a value does not fit
  put_le(end, 0, 2);
  put_le(end, 0, 2);
  put_le(end, std::min<uint64_t>(n, 0xFFFF), 2);
  put_le(end, std::min<uint64_t>(n, 0xFFFF), 2);
  put_le(end, cd_size >= k32 ? k32 : cd_size, 4);
  put_le(end, cd_offset >= k32 ? k32 : cd_offset, 4);
  put_le(end, 0, 2);
  cd.insert(cd.end(), end.begin(), end.end());
  return sink.write(cd);
}

Status write_archive(Sink& sink, const WValue& root, const WriteOptions& opts) {
  if (opts.alignment == 0 || (opts.alignment & (opts.alignment - 1)) != 0 || opts.alignment > 0xFFFF)
    return make_error("MG-TENSOR-WRITE-INVALID", "alignment must be a power of two below 65536",
                      "use the default alignment of 64");
  if (opts.folder.empty() || opts.folder.find('/') != std::string::npos)
    return make_error("MG-TENSOR-WRITE-INVALID", "archive folder must be one non-empty path component",
                      "use the default folder 'archive'");
  auto pickled = detail::pickle_for_torch_save(root, opts);
  if (!pickled) return pickled.error();

  std::set<std::string> omit(opts.omit_records.begin(), opts.omit_records.end());
  std::vector<CentralEntry> central;
  auto rec = [&](const std::string& name, std::span<const uint8_t> data) -> Status {
    if (omit.count(name)) return ok_status();
    return write_record(sink, opts.folder + "/" + name, data, opts.alignment, central);
  };
  static constexpr uint8_t kLittle[] = {'l', 'i', 't', 't', 'l', 'e'};
  static constexpr uint8_t kVersion[] = {'3', '\n'};
  if (auto st = rec("data.pkl", pickled->pickle); !st) return st;
  if (auto st = rec("byteorder", kLittle); !st) return st;
  for (const auto& s : pickled->storages)
    if (auto st = rec("data/" + s.key, s.bytes); !st) return st;
  for (const auto& [name, bytes] : opts.extra_records)  // never omitted: omit + extra replaces a record
    if (auto st = write_record(sink, opts.folder + "/" + name, bytes, opts.alignment, central); !st) return st;
  if (auto st = rec("version", kVersion); !st) return st;
  return write_central_and_end(sink, central);
}

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

ZipEntryLayout plan_zip_entry(uint64_t header_offset, uint64_t name_bytes, uint64_t size, uint64_t alignment) {
  ZipEntryLayout L;
  L.zip64_size = size >= k32;
  L.zip64_offset = header_offset >= k32;
  L.flags = size > 0 ? 0x0808 : 0x0800;
  // torch's getPadding: header + name + FB field header, the ZIP64 field when present.
  uint64_t start = header_offset + 30 + name_bytes + 4;
  if (L.zip64_size || L.zip64_offset) start += 4;
  if (L.zip64_size) start += 16;
  if (L.zip64_offset) start += 8;
  L.padding = (alignment - start % alignment) % alignment;
  if (L.zip64_size || L.zip64_offset) {
    put_le(L.local_extra, 0x0001, 2);
    put_le(L.local_extra, (L.zip64_size ? 16 : 0) + (L.zip64_offset ? 8 : 0), 2);
    if (L.zip64_size) {
      put_le(L.local_extra, size, 8);  // uncompressed
      put_le(L.local_extra, 0, 8);     // compressed: not yet known when miniz writes the header
    }
    if (L.zip64_offset) put_le(L.local_extra, header_offset, 8);
    L.central_extra = L.local_extra;
    if (L.zip64_size) {
      for (int k = 0; k < 8; ++k) L.central_extra[12 + k] = static_cast<uint8_t>(size >> (8 * k));
    }
  }
  put_le(L.local_extra, 0x4246, 2);  // "FB"
  put_le(L.local_extra, L.padding, 2);
  L.local_extra.insert(L.local_extra.end(), L.padding, 'Z');
  L.data_offset = header_offset + 30 + name_bytes + L.local_extra.size();
  L.descriptor_bytes = size == 0 ? 0 : (L.zip64_size || L.zip64_offset) ? 24 : 16;
  L.end = L.data_offset + size + L.descriptor_bytes;
  return L;
}

WTensor make_tensor(DType dtype, std::vector<int64_t> sizes, std::vector<uint8_t> bytes) {
  WTensor t;
  t.dtype = dtype;
  t.sizes = std::move(sizes);
  t.owned = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  t.storage = {t.owned->data(), t.owned->size()};
  return t;
}

Result<std::vector<uint8_t>> write_torch_save(const WValue& root, const WriteOptions& opts) {
  std::vector<uint8_t> out;
  VectorSink sink(out);
  if (auto st = write_archive(sink, root, opts); !st) return st.error();
  return out;
}

Status write_torch_save_file(const std::string& path, const WValue& root, const WriteOptions& opts) {
  struct stat st_target {};
  if (!opts.overwrite && ::lstat(path.c_str(), &st_target) == 0) {
    Finding f = make_error("MG-IO-EXISTS", "output file already exists", "choose another path or pass --force");
    f.file = path;
    return f;
  }
  // Temp file next to the target so the final rename is atomic (same file system).
  const std::string dir = parent_dir(path);
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = path + ".mgcheck-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
          std::to_string(rd());
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) return write_error(path, "cannot create temporary file", errno);
  }
  if (fd < 0) return write_error(path, "cannot create temporary file", EEXIST);
  auto fail = [&](Finding f) -> Status {
    ::close(fd);
    ::unlink(tmp.c_str());
    return f;
  };

  FileSink sink(fd, path, opts.testing_start_offset);
  if (auto st = write_archive(sink, root, opts); !st) return fail(st.error());
  if (::fsync(fd) != 0) return fail(write_error(path, "fsync failed", errno));
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return write_error(path, "close failed", err);
  }
  int rc;
  if (opts.overwrite) {
    rc = ::rename(tmp.c_str(), path.c_str());
  } else {
    // No-replace rename closes the race between the existence check above and here.
    rc = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
    if (rc != 0 && errno == EINVAL) {  // file system without RENAME_NOREPLACE: link() never replaces
      rc = ::link(tmp.c_str(), path.c_str());
      if (rc == 0) ::unlink(tmp.c_str());
    }
  }
  if (rc != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST) {
      Finding f = make_error("MG-IO-EXISTS", "output file already exists", "choose another path or pass --force");
      f.file = path;
      return f;
    }
    return write_error(path, "rename failed", err);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // make the rename durable; failure here cannot undo it, so it is not reported
    ::close(dfd);
  }
  return ok_status();
}

}  // namespace mgcheck::format

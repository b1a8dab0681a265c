// The strict zip reader for torch.save archives (torch-save-format.md §2, §9.2, §9.3).
//
// It accepts exactly the layout torch's writer produces: [LFH + data + DD]... [CD] [ZIP64 EOCD]
// [ZIP64 locator] [EOCD], stored entries back to back from offset 0, and reports everything else.
// Every offset and size comes from the file, so every sum and bound is checked (checked.h).
#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>

#include "mgcheck/format/checked.h"
#include "mgcheck/format/container.h"
#include "mgcheck/format/hex.h"
#include "mgcheck/format/utf8.h"

namespace mgcheck::format {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kDescriptorSig = 0x08074b50;

constexpr uint64_t kEocdLen = 22;
constexpr uint64_t kLocatorLen = 20;
constexpr uint64_t kZip64EocdLen = 56;  // 12-byte header + the 44 bytes its size field counts
constexpr uint64_t kCentralFixed = 46;
constexpr uint64_t kLocalFixed = 30;
constexpr uint64_t kMaxEocdSearch = 65535 + kEocdLen;  // the largest possible archive comment

constexpr uint16_t kExtraZip64 = 0x0001;
constexpr uint16_t kExtraPadding = 0x4246;  // "FB": torch's alignment padding, payload all 'Z'

constexpr uint16_t kFlagDescriptor = 0x0008;
constexpr uint16_t kFlagUtf8 = 0x0800;
constexpr uint16_t kFlagEncryption = 0x0001 | 0x0040 | 0x2000;  // traditional, strong, masked CD

constexpr uint32_t kMax32 = 0xFFFFFFFFu;
constexpr uint16_t kMax16 = 0xFFFFu;

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t le64(const uint8_t* p) { return le32(p) | (static_cast<uint64_t>(le32(p + 4)) << 32); }

std::string ascii_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Records only TorchScript / torch.package archives carry (§9.1 item 1).
bool is_torchscript_record(std::string_view n) {
  return n == "constants.pkl" || n == "model.json" || n == "attributes.pkl" || n == "bytecode.pkl" ||
         starts_with(n, "code/") || starts_with(n, "extra/") || ends_with(n, ".debug_pkl");
}

bool is_expected_record(std::string_view n) {
  if (n == "data.pkl" || n == "version" || n == ".data/version" || n == "byteorder" ||
      n == ".format_version" || n == ".storage_alignment" || n == ".data/serialization_id")
    return true;
  if (starts_with(n, "data/")) {
    std::string_view key = n.substr(5);
    return !key.empty() && key.find('/') == std::string_view::npos;
  }
  return false;
}

// The parsed end records: where the central directory is and how many entries it holds.
struct EndRecords {
  uint64_t entries = 0;
  uint64_t cd_offset = 0;
  uint64_t cd_size = 0;
  uint64_t end_records_offset = 0;  // first byte after the CD: the ZIP64 EOCD (or the EOCD)
  uint64_t eocd_offset = 0;
};

// What a central-directory entry says, with ZIP64 values already substituted.
struct CentralEntry {
  uint64_t offset = 0;  // of the CD entry
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t csize = 0;
  uint64_t usize = 0;
  uint64_t local_offset = 0;
  std::string name;
  bool zip64 = false;
};

class ZipReader {
 public:
  ZipReader(const ByteSource& src, const Limits& limits, const ZipOptions& opts, Findings& findings)
      : src_(src), data_(src.bytes().data()), size_(src.size()), limits_(limits), opts_(opts),
        out_(findings) {}

  Result<ZipArchive> run();

 private:
  Finding finding(Finding f, uint64_t offset, std::string name = {}) const {
    f.file = src_.name();
    f.offset = offset;
    f.name = std::move(name);
    return f;
  }
  Finding error(const char* code, uint64_t off, std::string msg, std::string hint, std::string name = {}) const {
    return finding(make_error(code, std::move(msg), std::move(hint)), off, std::move(name));
  }
  void push_error(const char* code, uint64_t off, std::string msg, std::string hint, std::string name = {}) {
    out_.push(error(code, off, std::move(msg), std::move(hint), std::move(name)));
  }
  void push_warning(const char* code, uint64_t off, std::string msg, std::string hint, std::string name = {}) {
    out_.push(finding(make_warning(code, std::move(msg), std::move(hint)), off, std::move(name)));
  }
  void push_unsafe(const char* code, uint64_t off, std::string msg, std::string hint, std::string name = {}) {
    out_.push(finding(make_unsafe(code, std::move(msg), std::move(hint)), off, std::move(name)));
  }

  Result<EndRecords> read_end_records();
  Result<CentralEntry> read_central_entry(uint64_t pos, uint64_t cd_end, uint64_t& next);
  Status read_local(const CentralEntry& ce, ZipRecord& rec, uint64_t& entry_end);
  // Parses the local extra area; returns the offset of its (first) ZIP64 field, if any.
  std::optional<uint64_t> parse_local_extra(uint64_t off, uint64_t len, const std::string& name);
  void check_local_sizes(const CentralEntry& ce, uint64_t lho, uint16_t flags, uint32_t csize, uint32_t usize,
                         std::optional<uint64_t> zip64_at);
  void check_name(const CentralEntry& ce);
  void check_records(ZipArchive& za, const std::vector<CentralEntry>& cds);
  void check_small_records(const ZipArchive& za, uint64_t& alignment);

  const ByteSource& src_;
  const uint8_t* data_;
  uint64_t size_;
  const Limits& limits_;
  const ZipOptions& opts_;
  Findings& out_;
};

Result<EndRecords> ZipReader::read_end_records() {
  EndRecords er;
  const char* hint_trunc = "the file is truncated or not a zip archive: download it again";
  if (size_ < kEocdLen)
    return error("MG-ZIP-NO-EOCD", size_, "file too short for a zip end-of-central-directory record",
                 hint_trunc);
  uint64_t eocd = size_ - kEocdLen;
  if (le32(data_ + eocd) != kEocdSig) {
    // Strict: the EOCD must be the last 22 bytes. Search a bounded window only to explain the failure.
    uint64_t lowest = size_ > kMaxEocdSearch ? size_ - kMaxEocdSearch : 0;
    bool found = false;
    for (uint64_t p = eocd; p-- > lowest;) {
      if (le32(data_ + p) == kEocdSig && fits(p + kEocdLen, le16(data_ + p + 20), size_)) {
        found = true;
        eocd = p;
        break;
      }
    }
    if (!found)
      return error("MG-ZIP-NO-EOCD", size_,
                   "no end-of-central-directory record at the end of the file (truncated, or not a zip)",
                   hint_trunc);
    push_error("MG-ZIP-TRAILING-DATA", eocd + kEocdLen,
               std::to_string(size_ - eocd - kEocdLen) +
                   " bytes (archive comment or appended data) after the end-of-central-directory record",
               "torch.save writes nothing after the EOCD: re-save the file, or strip the appended bytes");
  } else if (le16(data_ + eocd + 20) != 0) {
    push_error("MG-ZIP-EOCD", eocd + 20, "archive comment length is non-zero but the file ends at the EOCD",
               "the end record is damaged: re-save the file");
  }
  er.eocd_offset = eocd;
  const uint8_t* e = data_ + eocd;
  uint16_t disk = le16(e + 4), cd_disk = le16(e + 6);
  uint16_t n_disk = le16(e + 8), n_total = le16(e + 10);
  uint32_t cd_size32 = le32(e + 12), cd_off32 = le32(e + 16);
  const char* hint_disk = "multi-disk (split) archives are never written by torch.save: re-save as one file";
  if ((disk != 0 && disk != kMax16) || (cd_disk != 0 && cd_disk != kMax16) || n_disk != n_total)
    return error("MG-ZIP-MULTI-DISK", eocd, "end record describes a multi-disk archive", hint_disk);

  bool has_locator = eocd >= kLocatorLen && le32(data_ + eocd - kLocatorLen) == kZip64LocatorSig;
  if (!has_locator) {
    bool sentinels = n_total == kMax16 || cd_size32 == kMax32 || cd_off32 == kMax32;
    if (sentinels)
      return error("MG-ZIP-ZIP64-MISSING", eocd,
                   "end record uses ZIP64 sentinels but no ZIP64 locator precedes it", hint_trunc);
    push_error("MG-ZIP-ZIP64-MISSING", eocd,
               "no ZIP64 end record and locator (torch.save always writes them): not written by torch.save",
               "re-save the checkpoint with torch.save");
    er.entries = n_total;
    er.cd_size = cd_size32;
    er.cd_offset = cd_off32;
    er.end_records_offset = eocd;
    return er;
  }
  const uint64_t loc = eocd - kLocatorLen;
  const uint8_t* l = data_ + loc;
  uint32_t z64_disk = le32(l + 4), total_disks = le32(l + 16);
  uint64_t z64_off = le64(l + 8);
  if (z64_disk != 0 || total_disks != 1)
    return error("MG-ZIP-MULTI-DISK", loc, "ZIP64 locator describes a multi-disk archive", hint_disk);
  if (loc < kZip64EocdLen || z64_off != loc - kZip64EocdLen)
    return error("MG-ZIP-ZIP64-LOCATOR", loc,
                 "ZIP64 locator points to " + std::to_string(z64_off) +
                     ", not to the ZIP64 end record right before it",
                 "the end records are damaged or were edited: re-save the file");
  const uint8_t* z = data_ + z64_off;
  if (le32(z) != kZip64EocdSig)
    return error("MG-ZIP-ZIP64-EOCD", z64_off, "no ZIP64 end-of-central-directory signature where the locator points",
                 "the end records are damaged: re-save the file");
  if (le64(z + 4) != 44)
    return error("MG-ZIP-ZIP64-EOCD", z64_off + 4,
                 "ZIP64 end record size is " + std::to_string(le64(z + 4)) + ", expected 44",
                 "the end records are damaged or carry extensible data torch never writes: re-save the file");
  uint32_t zd = le32(z + 16), zcd = le32(z + 20);
  uint64_t zn_disk = le64(z + 24), zn_total = le64(z + 32), zcd_size = le64(z + 40), zcd_off = le64(z + 48);
  if (zd != 0 || zcd != 0 || zn_disk != zn_total)
    return error("MG-ZIP-MULTI-DISK", z64_off, "ZIP64 end record describes a multi-disk archive", hint_disk);
  // Classic fields must equal the ZIP64 ones or be the sentinels: two readers must never disagree.
  auto agree = [](uint64_t classic, uint64_t sentinel, uint64_t full) { return classic == sentinel || classic == full; };
  if (!agree(n_total, kMax16, zn_total) || !agree(n_disk, kMax16, zn_disk) ||
      !agree(cd_size32, kMax32, zcd_size) || !agree(cd_off32, kMax32, zcd_off))
    return error("MG-ZIP-EOCD-MISMATCH", eocd,
                 "classic end record (entries " + std::to_string(n_total) + ", CD size " + std::to_string(cd_size32) +
                     ", CD offset " + std::to_string(cd_off32) + ") disagrees with the ZIP64 end record (entries " +
                     std::to_string(zn_total) + ", CD size " + std::to_string(zcd_size) + ", CD offset " +
                     std::to_string(zcd_off) + ")",
                 "the end records were edited: zip readers would disagree on the contents; re-save the file");
  er.entries = zn_total;
  er.cd_size = zcd_size;
  er.cd_offset = zcd_off;
  er.end_records_offset = z64_off;
  return er;
}

Result<CentralEntry> ZipReader::read_central_entry(uint64_t pos, uint64_t cd_end, uint64_t& next) {
  const char* hint = "the central directory is damaged: re-save the file";
  if (!fits(pos, kCentralFixed, cd_end))
    return error("MG-ZIP-CD-ENTRY", pos, "central directory entry runs past the end of the central directory", hint);
  const uint8_t* p = data_ + pos;
  if (le32(p) != kCentralSig)
    return error("MG-ZIP-CD-ENTRY", pos, "bad central directory entry signature " + hex_string(le32(p)), hint);
  CentralEntry ce;
  ce.offset = pos;
  ce.flags = le16(p + 8);
  ce.method = le16(p + 10);
  ce.crc = le32(p + 16);
  uint32_t csize32 = le32(p + 20), usize32 = le32(p + 24);
  uint16_t nlen = le16(p + 28), xlen = le16(p + 30), clen = le16(p + 32), disk = le16(p + 34);
  uint32_t lho32 = le32(p + 42);
  uint64_t var = uint64_t{nlen} + xlen + clen;
  if (!fits(pos + kCentralFixed, var, cd_end))
    return error("MG-ZIP-CD-ENTRY", pos, "central directory entry's name/extra/comment run past the central directory",
                 hint);
  next = pos + kCentralFixed + var;
  ce.name.assign(reinterpret_cast<const char*>(p + kCentralFixed), nlen);
  if (clen != 0)
    push_warning("MG-ZIP-ENTRY-COMMENT", pos, "entry carries a " + std::to_string(clen) + "-byte comment",
                 "torch.save never writes entry comments", ce.name);

  // Extra fields: only ZIP64 belongs in the central directory.
  uint64_t xoff = pos + kCentralFixed + nlen, xend = xoff + xlen;
  const uint8_t* zip64 = nullptr;
  uint16_t zip64_len = 0;
  while (xoff < xend) {
    if (xend - xoff < 4 || le16(data_ + xoff + 2) > xend - xoff - 4) {
      push_error("MG-ZIP-EXTRA", xoff, "central extra field is truncated or its length overruns the extra area",
                 "the central directory is damaged: re-save the file", ce.name);
      break;
    }
    uint16_t id = le16(data_ + xoff), len = le16(data_ + xoff + 2);
    if (id == kExtraZip64) {
      if (zip64 != nullptr)
        push_error("MG-ZIP-EXTRA", xoff, "two ZIP64 extra fields in one central entry",
                   "the central directory is damaged: re-save the file", ce.name);
      else {
        zip64 = data_ + xoff + 4;
        zip64_len = len;
      }
    } else {
      push_warning("MG-ZIP-EXTRA-UNEXPECTED", xoff, "unexpected central extra field id " + hex_string(id),
                   "torch.save writes only the ZIP64 extra field in the central directory", ce.name);
    }
    xoff += 4 + uint64_t{len};
  }
  // ZIP64 values replace exactly the fields that hold sentinels, in APPNOTE order.
  uint64_t need = (usize32 == kMax32 ? 8 : 0) + (csize32 == kMax32 ? 8 : 0) + (lho32 == kMax32 ? 8 : 0) +
                  (disk == kMax16 ? 4 : 0);
  ce.usize = usize32;
  ce.csize = csize32;
  ce.local_offset = lho32;
  uint64_t disk_full = disk;
  if (need > 0) {
    if (zip64 == nullptr || zip64_len < need)
      return error("MG-ZIP-ZIP64-FIELD", pos,
                   "entry uses ZIP64 sentinels but its ZIP64 extra field is missing or too short", hint, ce.name);
    const uint8_t* q = zip64;
    if (usize32 == kMax32) ce.usize = le64(q), q += 8;
    if (csize32 == kMax32) ce.csize = le64(q), q += 8;
    if (lho32 == kMax32) ce.local_offset = le64(q), q += 8;
    if (disk == kMax16) disk_full = le32(q);
    ce.zip64 = true;
  }
  if (zip64 != nullptr && zip64_len != need)
    push_error("MG-ZIP-ZIP64-FIELD", pos,
               "ZIP64 extra field is " + std::to_string(zip64_len) + " bytes, the sentinels need " + std::to_string(need),
               "torch.save writes the ZIP64 field exactly when a value does not fit in 32 bits", ce.name);
  if (disk_full != 0)
    return error("MG-ZIP-MULTI-DISK", pos, "entry starts on disk " + std::to_string(disk_full),
                 "multi-disk (split) archives are never written by torch.save", ce.name);
  return ce;
}

void ZipReader::check_name(const CentralEntry& ce) {
  const std::string& n = ce.name;
  const char* hint_unsafe = "an archive name that escapes its folder is an attack on tools that extract: do not use this file";
  if (n.size() > limits_.max_name_bytes) {
    push_error("MG-ZIP-NAME-TOO-LONG", ce.offset,
               "record name is " + std::to_string(n.size()) + " bytes (limit max_name_bytes = " +
                   std::to_string(limits_.max_name_bytes) + ")",
               "raise --limit max_name_bytes only if the file is trusted", n.substr(0, 256));
    return;
  }
  if (!valid_utf8(n)) {
    push_error("MG-ZIP-NAME-UTF8", ce.offset, "record name is not valid UTF-8", "re-save the file with torch.save", n);
    return;
  }
  if (n.find('\0') != std::string::npos) {
    push_error("MG-ZIP-NAME-INVALID", ce.offset, "record name contains a NUL byte",
               "names are truncated at NUL by some readers: re-save the file", n);
    return;
  }
  if (n.find('\\') != std::string::npos) {
    push_unsafe("MG-ZIP-NAME-UNSAFE", ce.offset, "record name contains a backslash", hint_unsafe, n);
    return;
  }
  if (!n.empty() && n[0] == '/') {
    push_unsafe("MG-ZIP-NAME-UNSAFE", ce.offset, "record name is an absolute path", hint_unsafe, n);
    return;
  }
  if (n.size() >= 2 && n[1] == ':' && ((n[0] >= 'A' && n[0] <= 'Z') || (n[0] >= 'a' && n[0] <= 'z'))) {
    push_unsafe("MG-ZIP-NAME-UNSAFE", ce.offset, "record name starts with a drive letter", hint_unsafe, n);
    return;
  }
  size_t start = 0;
  while (true) {
    size_t slash = n.find('/', start);
    std::string_view seg = std::string_view(n).substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (seg == "..") {
      push_unsafe("MG-ZIP-NAME-UNSAFE", ce.offset, "record name contains a '..' segment (path traversal)", hint_unsafe, n);
      return;
    }
    if (seg.empty() || seg == ".") {
      push_error("MG-ZIP-NAME-INVALID", ce.offset,
                 seg.empty() ? "record name has an empty segment (leading, doubled or trailing '/')"
                             : "record name contains a '.' segment",
                 "torch.save writes plain folder/record names: re-save the file", n);
      return;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  // torch.save writes printable ASCII names; a control character (C0, DEL, or a C1 control as its UTF-8
  // pair C2 80..C2 9F) rewrites terminals and logs that show the name, and no torch file has one.
  for (size_t i = 0; i < n.size(); ++i) {
    const auto c = static_cast<uint8_t>(n[i]);
    uint32_t control = 0x100;  // none
    if (c < 0x20 || c == 0x7F)
      control = c;
    else if (c == 0xC2 && i + 1 < n.size() && static_cast<uint8_t>(n[i + 1]) <= 0x9F)
      control = static_cast<uint8_t>(n[i + 1]);  // valid UTF-8 here, so the next byte is 80..BF
    if (control != 0x100) {
      push_error("MG-ZIP-NAME-CONTROL", ce.offset,
                 "record name contains the control character " + hex_string(control, 2) + " at byte " +
                     std::to_string(i),
                 "torch.save writes printable names: re-save the file", n);
      return;
    }
  }
}

std::optional<uint64_t> ZipReader::parse_local_extra(uint64_t off, uint64_t len, const std::string& name) {
  uint64_t end = off + len;
  bool seen_zip64 = false, seen_pad = false;
  std::optional<uint64_t> zip64_at;
  while (off < end) {
    if (end - off < 4 || le16(data_ + off + 2) > end - off - 4) {
      push_error("MG-ZIP-EXTRA", off, "local extra field is truncated or its length overruns the extra area",
                 "the local header is damaged: re-save the file", name);
      return zip64_at;
    }
    uint16_t id = le16(data_ + off), flen = le16(data_ + off + 2);
    if (id == kExtraZip64 && !seen_zip64) {
      seen_zip64 = true;  // sizes and offsets come from the CD (§2.6); check_local_sizes compares them
      zip64_at = off;
    } else if (id == kExtraPadding && !seen_pad) {
      seen_pad = true;
      const uint8_t* q = data_ + off + 4;
      if (!std::all_of(q, q + flen, [](uint8_t b) { return b == 'Z'; }))
        push_warning("MG-ZIP-PADDING", off, "alignment padding field holds bytes other than 'Z'",
                     "torch.save pads with 'Z' only: the padding may hide data", name);
    } else if (id == kExtraZip64 || id == kExtraPadding) {
      push_error("MG-ZIP-EXTRA", off, "extra field " + hex_string(id) + " appears twice in one local header",
                 "the local header is damaged: re-save the file", name);
    } else {
      push_warning("MG-ZIP-EXTRA-UNEXPECTED", off, "unexpected local extra field id " + hex_string(id),
                   "torch.save writes only the ZIP64 and 'FB' padding extra fields", name);
    }
    off += 4 + uint64_t{flen};
  }
  return zip64_at;
}

// The local header's sizes (and its ZIP64 field) against the central directory. A streaming reader takes
// the record's extent from the local header, torch (miniz) from the central directory: when they
// disagree the two see different bytes, which is how a scanner is shown one payload and a loader
// another. So any disagreement is `unsafe`. What torch writes passes: with flag bit 3 (data descriptor)
// zeros in the local CRC and sizes, and a ZIP64 field whose compressed size is 0 (§2.4, §2.6).
void ZipReader::check_local_sizes(const CentralEntry& ce, uint64_t lho, uint16_t flags, uint32_t csize,
                                  uint32_t usize, std::optional<uint64_t> zip64_at) {
  const bool descriptor = (flags & kFlagDescriptor) != 0;
  // A local value agrees when it equals the CD's, or is 0 with the real value in the descriptor.
  auto agrees = [&](uint64_t local, uint64_t cd) { return local == cd || (descriptor && local == 0); };
  const char* hint = "a streaming zip reader and torch would read different bytes for this record: do not use the file";
  std::string diffs;
  auto differ = [&diffs](const std::string& what) { diffs += diffs.empty() ? what : ", " + what; };
  // 0xFFFFFFFF defers to the ZIP64 field (checked below, and required).
  bool deferred = csize == kMax32 || usize == kMax32;
  if (csize != kMax32 && !agrees(csize, ce.csize)) differ("compressed size " + std::to_string(csize));
  if (usize != kMax32 && !agrees(usize, ce.usize)) differ("size " + std::to_string(usize));
  if (deferred && !zip64_at) differ("sizes 0xFFFFFFFF without a ZIP64 extra field");
  if (!diffs.empty())
    push_unsafe("MG-ZIP-LOCAL-SIZES", lho,
                "local header disagrees with the central directory (size " + std::to_string(ce.usize) + ") on " + diffs,
                hint, ce.name);
  if (!zip64_at) return;
  // The local ZIP64 field: 16 bytes = uncompressed, compressed size; 24 = those and the local header
  // offset; 8 = the local header offset (what miniz writes past 4 GiB) or an uncompressed size.
  const uint64_t off = *zip64_at;
  const uint16_t flen = le16(data_ + off + 2);
  const uint8_t* q = data_ + off + 4;
  bool ok = true;
  if (flen == 8) {
    uint64_t v = le64(q);
    ok = v == ce.local_offset || agrees(v, ce.usize);
  } else if (flen == 16 || flen == 24) {
    ok = agrees(le64(q), ce.usize) && agrees(le64(q + 8), ce.csize) && (flen == 16 || le64(q + 16) == ce.local_offset);
  } else {
    ok = false;
  }
  if (!ok)
    push_unsafe("MG-ZIP-LOCAL-ZIP64", off,
                "local ZIP64 extra field (" + std::to_string(flen) + " bytes) disagrees with the central directory",
                hint, ce.name);
}

// Reads the local header of `ce`, cross-checks it, and finds the end of the entry (after its descriptor).
Status ZipReader::read_local(const CentralEntry& ce, ZipRecord& rec, uint64_t& entry_end) {
  const uint64_t lho = ce.local_offset;
  const char* hint = "the archive is damaged: re-save the file";
  if (!fits(lho, kLocalFixed, size_) || le32(data_ + lho) != kLocalSig)
    return error("MG-ZIP-LOCAL-HEADER", lho, "no local file header where the central directory points", hint, ce.name);
  const uint8_t* p = data_ + lho;
  uint16_t flags = le16(p + 6), method = le16(p + 8);
  uint32_t crc = le32(p + 14), csize = le32(p + 18), usize = le32(p + 22);
  uint16_t nlen = le16(p + 26), xlen = le16(p + 28);
  if (!fits(lho + kLocalFixed, uint64_t{nlen} + xlen, size_))
    return error("MG-ZIP-LOCAL-HEADER", lho, "local header's name and extra field run past the end of the file", hint,
                 ce.name);
  std::string_view lname(reinterpret_cast<const char*>(p + kLocalFixed), nlen);
  std::string diffs;
  auto differ = [&diffs](const char* what) { diffs += diffs.empty() ? what : std::string(", ") + what; };
  if (lname != ce.name) differ("name");
  if (flags != ce.flags) differ("flags");
  if (method != ce.method) differ("method");
  if (flags & kFlagDescriptor) {
    // Values follow in the descriptor; torch writes zeros here, other writers may repeat them.
    if (crc != 0 && crc != ce.crc) differ("CRC-32");
  } else {
    if (crc != ce.crc) differ("CRC-32");
  }
  if (!diffs.empty())
    push_error("MG-ZIP-LOCAL-MISMATCH", lho, "local header disagrees with the central directory on " + diffs,
               "zip readers would disagree on this record: re-save the file", ce.name);
  auto zip64_at = parse_local_extra(lho + kLocalFixed + nlen, xlen, ce.name);
  check_local_sizes(ce, lho, flags, csize, usize, zip64_at);

  rec.header_offset = lho;
  rec.data_offset = lho + kLocalFixed + nlen + xlen;  // < size_ + 2^17: no overflow
  rec.size = ce.csize;
  if (!fits(rec.data_offset, ce.csize, size_))
    return error("MG-ZIP-TRUNCATED", rec.data_offset,
                 "record data (" + std::to_string(ce.csize) + " bytes) runs past the end of the file", hint, ce.name);
  uint64_t data_end = rec.data_offset + ce.csize;
  entry_end = data_end;
  if (flags & kFlagDescriptor) {
    // 24-byte descriptor exactly when the entry is ZIP64 by torch's rule (§2.4).
    bool zip64 = ce.usize >= kMax32 || lho >= kMax32;
    uint64_t dlen = zip64 ? 24 : 16;
    if (!fits(data_end, dlen, size_))
      return error("MG-ZIP-TRUNCATED", data_end, "data descriptor runs past the end of the file", hint, ce.name);
    const uint8_t* d = data_ + data_end;
    uint64_t dc = zip64 ? le64(d + 8) : le32(d + 8);
    uint64_t du = zip64 ? le64(d + 16) : le32(d + 12);
    if (le32(d) != kDescriptorSig)
      push_error("MG-ZIP-DESCRIPTOR", data_end, "no data descriptor signature after the record data (flag bit 3 set)",
                 hint, ce.name);
    else if (le32(d + 4) != ce.crc || dc != ce.csize || du != ce.usize)
      push_error("MG-ZIP-DESCRIPTOR", data_end, "data descriptor CRC/sizes disagree with the central directory",
                 "zip readers would disagree on this record: re-save the file", ce.name);
    entry_end = data_end + dlen;
  }
  return ok_status();
}

// Content rules for the small metadata records (§9.3 item 15); returns the storage alignment in force.
void ZipReader::check_small_records(const ZipArchive& za, uint64_t& alignment) {
  auto text = [&](const ZipRecord& r) -> std::string_view {
    return {reinterpret_cast<const char*>(data_ + r.data_offset), static_cast<size_t>(std::min<uint64_t>(r.size, 4096))};
  };
  for (const char* vname : {".data/version", "version"}) {
    const ZipRecord* r = za.find(vname);
    if (r == nullptr) continue;
    std::string_view t = text(*r);
    std::string_view digits = t;
    if (!digits.empty() && digits.back() == '\n') digits.remove_suffix(1);
    bool ok = r->size <= 32 && all_digits(digits) && digits.size() <= 9;
    uint64_t v = 0;
    if (ok) {
      for (char c : digits) v = v * 10 + static_cast<uint64_t>(c - '0');
      ok = v >= 1 && v <= 10;
    }
    if (!ok)
      push_error("MG-ZIP-VERSION", r->data_offset,
                 "record '" + std::string(vname) + "' must be decimal digits (optionally + newline) in [1, 10]",
                 "torch.save writes \"3\\n\": re-save the file", vname);
  }
  if (const ZipRecord* r = za.find("byteorder")) {
    std::string_view t = text(*r);
    if (t == "big")
      push_error("MG-ZIP-BIG-ENDIAN", r->data_offset, "storages are big-endian (byteorder = big): unsupported",
                 "re-save the checkpoint on a little-endian machine", "byteorder");
    else if (t != "little")
      push_error("MG-ZIP-BYTEORDER", r->data_offset, "byteorder record is neither 'little' nor 'big'",
                 "the record is damaged: re-save the file", "byteorder");
  }
  if (const ZipRecord* r = za.find(".format_version"); r != nullptr && !(r->size <= 20 && all_digits(text(*r))))
    push_warning("MG-ZIP-META-RECORD", r->data_offset, ".format_version is not decimal digits",
                 "newer torch writes \"1\": the file may not come from torch.save", ".format_version");
  if (const ZipRecord* r = za.find(".storage_alignment")) {
    std::string_view t = text(*r);
    uint64_t v = 0;
    bool ok = r->size <= 4 && all_digits(t);
    if (ok) {
      for (char c : t) v = v * 10 + static_cast<uint64_t>(c - '0');
      ok = v >= 1 && v <= 4096 && (v & (v - 1)) == 0;
    }
    if (ok)
      alignment = v;
    else
      push_warning("MG-ZIP-META-RECORD", r->data_offset, ".storage_alignment is not a power of two in [1, 4096]",
                   "newer torch writes \"64\": the file may not come from torch.save", ".storage_alignment");
  }
  if (const ZipRecord* r = za.find(".data/serialization_id"); r != nullptr && !(r->size <= 64 && all_digits(text(*r))))
    push_warning("MG-ZIP-META-RECORD", r->data_offset, ".data/serialization_id is not at most 64 decimal digits",
                 "torch writes 40 digits: the file may not come from torch.save", ".data/serialization_id");
}

// Archive-level rules over all records: folder, duplicates, kinds of records, required ones, alignment.
void ZipReader::check_records(ZipArchive& za, const std::vector<CentralEntry>& cds) {
  // No two names equal after ASCII case folding (torch looks names up case-insensitively).
  std::vector<std::pair<std::string, uint32_t>> folded;
  folded.reserve(cds.size());
  for (uint32_t i = 0; i < cds.size(); ++i) folded.emplace_back(ascii_lower(cds[i].name), i);
  std::stable_sort(folded.begin(), folded.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < folded.size(); ++i)
    if (folded[i].first == folded[i - 1].first) {
      const CentralEntry& dup = cds[folded[i].second];
      const CentralEntry& first = cds[folded[i - 1].second];
      push_unsafe("MG-ZIP-DUPLICATE-NAME", dup.offset,
                  dup.name == first.name ? "two records have the same name"
                                         : "record name differs from '" + first.name + "' only in letter case",
                  "torch and other zip readers pick different records for such names: do not use this file",
                  dup.name);
    }

  uint64_t alignment = 64;
  check_small_records(za, alignment);

  const ZipRecord* first_ts = nullptr;
  for (size_t i = 0; i < za.records.size(); ++i) {
    const ZipRecord& r = za.records[i];
    bool inside_folder = cds[i].name.size() > r.name.size();  // else MG-ZIP-FOLDER-MISMATCH was reported
    if (r.name.empty() || !inside_folder) continue;
    if (is_torchscript_record(r.name)) {
      if (first_ts == nullptr) first_ts = &r;
      continue;
    }
    if (!is_expected_record(r.name))
      push_warning("MG-ZIP-UNEXPECTED-RECORD", r.header_offset, "record '" + r.name + "' is not written by torch.save",
                   "unexpected records may hide data: remove them or re-save the file", r.name);
    if (r.data_offset % alignment != 0)
      push_warning("MG-ZIP-ALIGNMENT", r.data_offset,
                   "record data is not aligned to " + std::to_string(alignment) + " bytes",
                   "torch.save aligns every record with its 'FB' padding field: the file was rewritten by another tool",
                   r.name);
  }
  if (first_ts != nullptr) {
    za.torchscript = true;
    push_unsafe("MG-ZIP-TORCHSCRIPT", first_ts->header_offset,
                "TorchScript archive (record '" + first_ts->name + "') where a torch.save state dict belongs",
                "torch.load hands such files to torch.jit.load, which runs their code: export the weights with "
                "torch.save(state_dict)",
                first_ts->name);
  }
  if (za.find("data.pkl") == nullptr)
    push_error("MG-ZIP-MISSING-RECORD", za.central_directory_offset, "no data.pkl record in the archive folder",
               "not a torch.save file, or a damaged one: re-save it", "data.pkl");
  if (za.find("version") == nullptr && za.find(".data/version") == nullptr)
    push_error("MG-ZIP-MISSING-RECORD", za.central_directory_offset, "no version record in the archive folder",
               "torch.load refuses archives without one: re-save the file", "version");
}

Result<ZipArchive> ZipReader::run() {
  auto end = read_end_records();
  if (!end) return std::move(end).error();
  const EndRecords& er = *end;
  if (er.entries > limits_.max_records)
    return error("MG-ZIP-TOO-MANY-RECORDS", er.eocd_offset,
                 "archive declares " + std::to_string(er.entries) + " records (limit max_records = " +
                     std::to_string(limits_.max_records) + ")",
                 "raise --limit max_records only if the file is trusted");
  if (er.cd_size > limits_.max_central_directory_bytes)
    return error("MG-ZIP-CD-TOO-LARGE", er.eocd_offset,
                 "central directory is " + std::to_string(er.cd_size) + " bytes (limit max_central_directory_bytes = " +
                     std::to_string(limits_.max_central_directory_bytes) + ")",
                 "raise --limit max_central_directory_bytes only if the file is trusted");
  auto cd_end = checked_add(er.cd_offset, er.cd_size);
  if (!cd_end || *cd_end != er.end_records_offset)
    return error("MG-ZIP-CD-BOUNDS", er.eocd_offset,
                 "central directory (offset " + std::to_string(er.cd_offset) + ", " + std::to_string(er.cd_size) +
                     " bytes) does not end where the end records begin (" + std::to_string(er.end_records_offset) + ")",
                 "the archive is damaged, or data was inserted before the end records: re-save the file");
  if (er.entries == 0)
    return error("MG-ZIP-EMPTY", er.eocd_offset, "the archive holds no records", "not a torch.save file");
  if (er.cd_size / kCentralFixed < er.entries)
    return error("MG-ZIP-CD-BOUNDS", er.eocd_offset,
                 std::to_string(er.entries) + " entries cannot fit in a " + std::to_string(er.cd_size) +
                     "-byte central directory",
                 "the end records are damaged: re-save the file");

  ZipArchive za;
  za.central_directory_offset = er.cd_offset;
  za.central_directory_size = er.cd_size;
  std::vector<CentralEntry> cds;
  cds.reserve(static_cast<size_t>(er.entries));
  za.records.reserve(static_cast<size_t>(er.entries));

  uint64_t pos = er.cd_offset;
  uint64_t expected = 0;  // where the next local header must start: entries are back to back from 0
  for (uint64_t i = 0; i < er.entries; ++i) {
    uint64_t next = 0;
    auto ce = read_central_entry(pos, *cd_end, next);
    if (!ce) return std::move(ce).error();
    pos = next;
    CentralEntry& c = *ce;
    check_name(c);
    if (i == 0) {
      size_t slash = c.name.find('/');
      if (slash == std::string::npos || slash == 0)
        return error("MG-ZIP-NO-FOLDER", c.offset, "the first record '" + c.name + "' is not inside a folder",
                     "torch.load requires every record under one folder: re-save the file", c.name);
      za.folder = c.name.substr(0, slash);
    }
    ZipRecord rec;
    rec.zip64 = c.zip64;
    rec.crc32 = c.crc;
    if (starts_with(c.name, za.folder + "/")) {
      rec.name = c.name.substr(za.folder.size() + 1);
    } else {
      rec.name = c.name;
      push_error("MG-ZIP-FOLDER-MISMATCH", c.offset, "record '" + c.name + "' is outside the folder '" + za.folder + "/'",
                 "torch.load rejects archives with more than one top-level folder", c.name);
    }
    if (c.flags & kFlagEncryption)
      push_error("MG-ZIP-ENCRYPTED", c.offset, "record is encrypted", "torch.save never encrypts: re-save the file",
                 c.name);
    if (c.flags & ~(kFlagDescriptor | kFlagUtf8 | kFlagEncryption))
      push_warning("MG-ZIP-FLAGS", c.offset, "unusual general-purpose flags " + hex_string(c.flags),
                   "torch.save sets only bits 3 and 11", c.name);
    if (c.usize > size_)
      push_unsafe("MG-ZIP-BOMB", c.offset,
                  "record declares " + std::to_string(c.usize) + " uncompressed bytes, more than the whole file (" +
                      std::to_string(size_) + " bytes)",
                  "a reader that trusts this size allocates or inflates far more than the file holds: do not use it",
                  c.name);
    if (c.method != 0)
      push_error("MG-ZIP-COMPRESSED", c.offset, "record is compressed (method " + std::to_string(c.method) + ")",
                 "torch.save stores records uncompressed; recompressing tools break mmap loading: re-save the file",
                 c.name);
    else if (c.csize != c.usize)
      push_error("MG-ZIP-SIZE-MISMATCH", c.offset,
                 "stored record's compressed size " + std::to_string(c.csize) + " differs from its size " +
                     std::to_string(c.usize),
                 "the central directory is damaged: re-save the file", c.name);

    uint64_t entry_end = 0;
    if (auto st = read_local(c, rec, entry_end); !st) return std::move(st).error();
    bool overlaps = c.local_offset < expected;
    if (c.local_offset > expected)
      push_error("MG-ZIP-GAP", expected,
                 std::to_string(c.local_offset - expected) + " unexplained bytes before record '" + c.name + "'",
                 "torch.save writes records back to back from offset 0: hidden bytes may carry a payload", c.name);
    else if (overlaps)
      push_error("MG-ZIP-OVERLAP", c.local_offset,
                 "record '" + c.name + "' starts inside (or aliases) an earlier record",
                 "torch.save never shares bytes between records: re-save the file", c.name);
    expected = std::max(expected, entry_end);
    // CRC only over bytes not already covered, so aliased entries cannot multiply the work.
    rec.crc_verifiable = c.method == 0 && !overlaps;
    if (opts_.verify_crc && rec.crc_verifiable) {
      uint32_t got = crc32(za.data(src_, rec));
      rec.crc_ok = got == c.crc;
      if (auto f = crc_finding(rec, got, src_.name())) out_.push(std::move(*f));
    }
    za.records.push_back(std::move(rec));
    cds.push_back(std::move(c));
  }
  if (pos != *cd_end)
    push_error("MG-ZIP-CD-BOUNDS", pos, std::to_string(*cd_end - pos) + " bytes after the last central directory entry",
               "the central directory size does not match its entries: re-save the file");
  if (expected < er.cd_offset)
    push_error("MG-ZIP-GAP", expected,
               std::to_string(er.cd_offset - expected) + " unexplained bytes between the last record and the central directory",
               "hidden bytes may carry a payload: re-save the file");
  else if (expected > er.cd_offset)
    push_error("MG-ZIP-OVERLAP", er.cd_offset, "the last record runs into the central directory",
               "the archive is damaged: re-save the file");

  za.by_name.resize(za.records.size());
  for (uint32_t i = 0; i < za.by_name.size(); ++i) za.by_name[i] = i;
  std::stable_sort(za.by_name.begin(), za.by_name.end(),
                   [&za](uint32_t a, uint32_t b) { return za.records[a].name < za.records[b].name; });
  check_records(za, cds);
  return za;
}

}  // namespace

const ZipRecord* ZipArchive::find(std::string_view name) const {
  if (by_name.size() == records.size()) {
    auto it = std::lower_bound(by_name.begin(), by_name.end(), name,
                               [this](uint32_t i, std::string_view n) { return records[i].name < n; });
    if (it != by_name.end() && records[*it].name == name) return &records[*it];
    return nullptr;
  }
  for (const auto& r : records)
    if (r.name == name) return &r;
  return nullptr;
}

std::optional<Finding> crc_finding(const ZipRecord& rec, uint32_t computed, const std::string& file) {
  if (computed == rec.crc32) return std::nullopt;
  Finding f = rec.crc32 == 0 && rec.size > 0
                  ? make_warning("MG-ZIP-CRC-ZERO",
                                 "stored CRC-32 is 0 for non-empty data (written with CRC computation disabled?)",
                                 "integrity cannot be checked; re-save with CRCs enabled")
                  : make_error("MG-ZIP-CRC", "CRC-32 mismatch: stored " + hex_string(rec.crc32) + ", data has " + hex_string(computed),
                               "the record's bytes changed after saving (corruption or tampering): download the file "
                               "again");
  f.file = file;
  f.offset = rec.data_offset;
  f.name = rec.name;
  return f;
}

Result<ZipArchive> read_zip(const ByteSource& src, const Limits& limits, const ZipOptions& opts, Findings& findings) {
  return ZipReader(src, limits, opts, findings).run();
}

}  // namespace mgcheck::format

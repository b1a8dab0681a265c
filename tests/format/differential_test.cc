// Differential test against Python torch: files written by torch.save at test time (every dtype,
// 0-dim and empty tensors, views, transposes, shared storages, Parameters, nested containers, unicode
// keys, protocols 2 to 5 in both the zip and the legacy format, a buffer save, a renamed file) are read
// by mgcheck, and every tensor must match what torch.load returns: dtype, shape, strides, storage
// offset, storage bytes, viewed bytes and storage sharing.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "mgcheck/format/checkpoint.h"
#include "test_support.h"

namespace mgcheck::format {
namespace {

using nlohmann::json;

std::string hex(std::span<const uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto v : b) {
    s += d[v >> 4];
    s += d[v & 15];
  }
  return s;
}

// The viewed elements in row-major order, gathered from the view's own metadata and storage bytes.
std::string view_hex(const TensorView& t) {
  std::vector<uint8_t> out;
  const size_t isz = itemsize(t.dtype);
  std::vector<int64_t> idx(t.sizes.size(), 0);
  for (uint64_t i = 0; i < t.numel; ++i) {
    int64_t e = t.storage_offset;
    for (size_t k = 0; k < t.sizes.size(); ++k) e += idx[k] * t.strides[k];
    auto p = t.storage.subspan(static_cast<size_t>(e) * isz, isz);
    out.insert(out.end(), p.begin(), p.end());
    for (size_t k = t.sizes.size(); k-- > 0;) {
      if (++idx[k] < t.sizes[k]) break;
      idx[k] = 0;
    }
  }
  return hex(out);
}

class Differential : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::python_torch_available()) return;
    dir_ = new test::TempDir("differential");
    auto r = test::run_process({"/usr/bin/python3", test::source_dir() + "/tests/python/make_differential_cases.py",
                                dir_->path()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    manifest_ = new json(json::parse(test::read_text(dir_->file("manifest.json"))));
  }
  static void TearDownTestSuite() {
    delete manifest_;
    delete dir_;
    manifest_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "Python torch not available");
  }

  void check_case(const std::string& name) {
    ASSERT_NE(manifest_, nullptr);
    ASSERT_TRUE(manifest_->contains(name)) << name;
    const json& m = manifest_->at(name);
    const std::string file = m.at("file");
    auto src = MappedFile::open(file);
    ASSERT_TRUE(src.ok()) << src.error().message;
    Findings findings;
    auto ck = read_checkpoint(**src, Limits{}, ReadOptions{}, findings);
    ASSERT_TRUE(ck.ok()) << ck.error().code << ": " << ck.error().message;
    for (const auto& f : findings.items())
      EXPECT_NE(f.severity, Severity::error) << f.code << " @" << (f.offset ? *f.offset : 0) << " " << f.name
                                             << ": " << f.message;
    EXPECT_EQ(std::string(container_kind_name(ck->kind)), m.at("container").get<std::string>());

    std::map<std::string, const TensorView*> by_path;
    for (const auto& n : ck->named) {
      EXPECT_TRUE(by_path.emplace(n.path, &ck->tensors[n.tensor]).second) << "duplicate path " << n.path;
      // key = the last component (which may itself contain '/', e.g. "音楽/生成").
      ASSERT_GE(n.path.size(), n.key.size());
      EXPECT_EQ(n.path.substr(n.path.size() - n.key.size()), n.key);
      EXPECT_TRUE(n.path.size() == n.key.size() || n.path[n.path.size() - n.key.size() - 1] == '/');
    }
    const json& tensors = m.at("tensors");
    EXPECT_EQ(ck->named.size(), tensors.size());
    // Python storage identity ↔ mgcheck storage key, both ways.
    std::map<std::string, std::string> key_of_id, id_of_key;
    for (const auto& t : tensors) {
      const std::string path = t.at("path");
      SCOPED_TRACE(name + ": " + path);
      ASSERT_TRUE(by_path.count(path)) << "mgcheck did not list " << path;
      const TensorView& v = *by_path[path];
      EXPECT_TRUE(v.valid);
      EXPECT_EQ(std::string(dtype_name(v.dtype)), t.at("dtype").get<std::string>());
      EXPECT_EQ(v.sizes, t.at("shape").get<std::vector<int64_t>>());
      EXPECT_EQ(v.strides, t.at("stride").get<std::vector<int64_t>>());
      EXPECT_EQ(v.storage_offset, t.at("offset").get<int64_t>());
      EXPECT_EQ(v.storage.size(), t.at("storage_nbytes").get<uint64_t>());
      EXPECT_EQ(hex(v.storage), t.at("storage_hex").get<std::string>());
      EXPECT_EQ(view_hex(v), t.at("view_hex").get<std::string>());
      uint64_t numel = 1;
      for (auto s : v.sizes) numel *= static_cast<uint64_t>(s);
      EXPECT_EQ(v.numel, numel);
      // The storage bytes are a view into the mapped file, at the offset the view reports.
      if (!v.storage.empty()) {
        EXPECT_EQ(v.storage.data(), (*src)->bytes().data() + v.storage_file_offset);
      }
      if (v.storage.empty()) continue;  // torch gives every empty storage data_ptr 0
      const std::string id = t.at("storage_id").dump();
      auto [it1, new1] = key_of_id.emplace(id, v.storage_key);
      EXPECT_EQ(it1->second, v.storage_key) << "torch shares a storage mgcheck splits";
      auto [it2, new2] = id_of_key.emplace(v.storage_key, id);
      EXPECT_EQ(it2->second, id) << "mgcheck shares a storage torch splits";
    }
  }

  static test::TempDir* dir_;
  static json* manifest_;
};
test::TempDir* Differential::dir_ = nullptr;
json* Differential::manifest_ = nullptr;

TEST_F(Differential, EveryDtype) { check_case("every_dtype"); }
TEST_F(Differential, ZeroDimAndEmpty) { check_case("zero_dim_and_empty"); }
TEST_F(Differential, ViewsAndTransposes) { check_case("views_and_transposes"); }
TEST_F(Differential, SharedStorageAtOffsets) { check_case("shared_storage_offsets"); }
TEST_F(Differential, ParametersAndModuleStateDict) { check_case("parameters"); }
TEST_F(Differential, NestedContainers) { check_case("nested_containers"); }
TEST_F(Differential, UnicodeKeys) { check_case("unicode_keys"); }
TEST_F(Differential, Protocol4) { check_case("protocol4"); }
TEST_F(Differential, Protocol2Explicit) { check_case("protocol2_explicit"); }
TEST_F(Differential, SavedToBuffer) { check_case("from_buffer"); }
TEST_F(Differential, RenamedFile) { check_case("renamed"); }
TEST_F(Differential, LegacyFormat) { check_case("legacy"); }
// The legacy format at every protocol: from protocol 3 on the magic-number pickle is no longer the
// protocol-2 byte string, and from 4 on every pickle is framed.
TEST_F(Differential, LegacyFormatProtocol2) { check_case("legacy_protocol2"); }
TEST_F(Differential, LegacyFormatProtocol3) { check_case("legacy_protocol3"); }
TEST_F(Differential, LegacyFormatProtocol4) { check_case("legacy_protocol4"); }
TEST_F(Differential, LegacyFormatProtocol5) { check_case("legacy_protocol5"); }
TEST_F(Differential, ZipProtocol2) { check_case("zip_protocol2"); }
TEST_F(Differential, ZipProtocol3) { check_case("zip_protocol3"); }
TEST_F(Differential, ZipProtocol4) { check_case("zip_protocol4"); }
TEST_F(Differential, ZipProtocol5) { check_case("zip_protocol5"); }

TEST_F(Differential, FolderNamesComeFromTheArchiveNotTheFileName) {
  auto folder = [&](const std::string& name) {
    auto src = MappedFile::open(manifest_->at(name).at("file").get<std::string>());
    Findings f;
    auto ck = read_checkpoint(**src, Limits{}, ReadOptions{}, f);
    return ck.ok() ? ck->folder : std::string("<error>");
  };
  EXPECT_EQ(folder("from_buffer"), "archive");
  EXPECT_EQ(folder("renamed"), "original_name");
  EXPECT_EQ(folder("every_dtype"), "every_dtype");
}

}  // namespace
}  // namespace mgcheck::format

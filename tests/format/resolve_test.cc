// Target resolution (contract §1): directories, files, offline Hugging Face repo ids, short names, URLs.
#include "mgcheck/format/resolve.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"

namespace fs = std::filesystem;
using namespace mgcheck::format;
using mgcheck::test::TempDir;
using mgcheck::test::write_text;

namespace {

// Lays out a hub cache the way huggingface_hub does: blobs/ + snapshots/<rev>/<file> symlinks + refs/main.
void lay_out_hub_repo(const std::string& cache, const std::string& folder, const std::string& rev,
                      const std::vector<std::string>& files, bool write_ref = true) {
  fs::path repo = fs::path(cache) / folder;
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "snapshots" / rev);
  for (const auto& f : files) {
    write_text((repo / "blobs" / ("blob-" + f)).string(), "payload of " + f);
    fs::create_symlink(fs::path("..") / ".." / "blobs" / ("blob-" + f), repo / "snapshots" / rev / f);
  }
  if (write_ref) {
    fs::create_directories(repo / "refs");
    write_text((repo / "refs" / "main").string(), rev);
  }
}

Env env_with_hub(const std::string& hub) {
  Env e;
  e.hf_hub_cache = hub;
  return e;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST(Resolve, ExportDirectoryWithBothFiles) {
  std::string dir = mgcheck::test::fixture_dir("a_small_like");
  auto r = resolve_target(dir, Env{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->kind, TargetKind::directory);
  EXPECT_TRUE(r->lm_exists);
  EXPECT_TRUE(r->compression_exists);
  EXPECT_EQ(r->lm_path, dir + "/state_dict.bin");
  EXPECT_EQ(r->compression_path, dir + "/compression_state_dict.bin");
}

TEST(Resolve, DirectoryWithMissingFilesIsNotAResolutionError) {
  TempDir tmp("resolve-empty-dir");
  auto r = resolve_target(tmp.path(), Env{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, TargetKind::directory);
  EXPECT_FALSE(r->lm_exists);
  EXPECT_FALSE(r->compression_exists);
}

TEST(Resolve, SingleFile) {
  std::string f = mgcheck::test::fixture_dir("a_small_like") + "/state_dict.bin";
  auto r = resolve_target(f, Env{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, TargetKind::file);
  EXPECT_EQ(r->lm_path, f);
  EXPECT_TRUE(r->lm_exists);
}

TEST(Resolve, UrlIsAUsageErrorWithADownloadHint) {
  auto r = resolve_target("https://dl.fbaipublicfiles.com/audiocraft/x/state_dict.bin", Env{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "MG-IO-TARGET-URL");
  EXPECT_TRUE(contains(r.error().hint, "download"));
}

TEST(Resolve, EmptyArgument) {
  auto r = resolve_target("", Env{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "MG-IO-TARGET-EMPTY");
}

TEST(Resolve, RepoIdFromHubCacheFollowsRefsMain) {
  TempDir tmp("resolve-hub");
  std::string hub = tmp.file("hub");
  // Two snapshots: refs/main names the second; the first holds a stale file only.
  lay_out_hub_repo(hub, "models--org--name", "aaaa1111", {"state_dict.bin"}, false);
  lay_out_hub_repo(hub, "models--org--name", "bbbb2222", {"state_dict.bin", "compression_state_dict.bin"});
  auto r = resolve_target("org/name", env_with_hub(hub));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->kind, TargetKind::hf_repo);
  EXPECT_EQ(r->repo_id, "org/name");
  EXPECT_TRUE(r->lm_exists);
  EXPECT_TRUE(r->compression_exists);
  EXPECT_EQ(r->lm_path, hub + "/models--org--name/snapshots/bbbb2222/state_dict.bin");
  EXPECT_EQ(mgcheck::test::read_text(r->lm_path), "payload of state_dict.bin");
}

TEST(Resolve, HubCacheChainHfHomeThenHome) {
  TempDir tmp("resolve-chain");
  lay_out_hub_repo(tmp.file("hfhome/hub"), "models--org--name", "r1", {"state_dict.bin"});
  lay_out_hub_repo(tmp.file("home/.cache/huggingface/hub"), "models--org--other", "r2", {"state_dict.bin"});
  Env e;
  e.hf_home = tmp.file("hfhome");
  e.home = tmp.file("home");
  auto a = resolve_target("org/name", e);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(contains(a->lm_path, "hfhome/hub/models--org--name/snapshots/r1"));
  EXPECT_FALSE(a->compression_exists);  // later a MG-SCHEMA-MISSING-FILE, not a resolution error
  // HF_HOME set: ~/.cache is not the hub any more (huggingface_hub's rule).
  auto b = resolve_target("org/other", e);
  ASSERT_FALSE(b.ok());
  e.hf_home.reset();
  auto c = resolve_target("org/other", e);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(contains(c->lm_path, "home/.cache/huggingface/hub/models--org--other/snapshots/r2"));
}

TEST(Resolve, AudiocraftCacheDirFlatLayoutWins) {
  TempDir tmp("resolve-accache");
  std::string ac = tmp.file("ac");
  fs::create_directories(ac + "/org/name");
  write_text(ac + "/org/name/state_dict.bin", "lm");
  write_text(ac + "/org/name/compression_state_dict.bin", "comp");
  lay_out_hub_repo(tmp.file("hub"), "models--org--name", "r", {"state_dict.bin"});
  Env e;
  e.audiocraft_cache_dir = ac;
  e.hf_hub_cache = tmp.file("hub");
  auto r = resolve_target("org/name", e);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->lm_path, ac + "/org/name/state_dict.bin");
  EXPECT_EQ(r->compression_path, ac + "/org/name/compression_state_dict.bin");
}

TEST(Resolve, AudiocraftCacheDirHubLayout) {
  // hf_hub_download(cache_dir=AUDIOCRAFT_CACHE_DIR) writes the hub layout under that directory.
  TempDir tmp("resolve-achub");
  lay_out_hub_repo(tmp.file("ac"), "models--facebook--musicgen-small", "abc", {"state_dict.bin"});
  Env e;
  e.audiocraft_cache_dir = tmp.file("ac");
  auto r = resolve_target("facebook/musicgen-small", e);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->lm_path, tmp.file("ac") + "/models--facebook--musicgen-small/snapshots/abc/state_dict.bin");
}

TEST(Resolve, MissingRepoListsEveryPlaceLookedIn) {
  TempDir tmp("resolve-missing");
  Env e;
  e.audiocraft_cache_dir = tmp.file("ac");
  e.hf_hub_cache = tmp.file("hub");
  auto r = resolve_target("org/absent", e);
  ASSERT_FALSE(r.ok());
  const Finding& f = r.error();
  EXPECT_EQ(f.code, "MG-IO-TARGET-NOT-FOUND");
  EXPECT_TRUE(contains(f.message, tmp.file("ac") + "/org/absent/state_dict.bin"));
  EXPECT_TRUE(contains(f.message, tmp.file("ac") + "/models--org--absent/snapshots/*/state_dict.bin"));
  EXPECT_TRUE(contains(f.message, tmp.file("hub") + "/models--org--absent/snapshots/*/compression_state_dict.bin"));
  EXPECT_TRUE(contains(f.message, "org/absent (as a local path)"));
  EXPECT_TRUE(contains(f.hint, "download"));
}

TEST(Resolve, ShortNamesMapToFacebookRepos) {
  TempDir tmp("resolve-short");
  lay_out_hub_repo(tmp.file("hub"), "models--facebook--musicgen-melody", "m1",
                   {"state_dict.bin", "compression_state_dict.bin"});
  // Run from a directory where "melody" is not an existing path.
  auto old = fs::current_path();
  fs::current_path(tmp.path());
  auto r = resolve_target("melody", env_with_hub(tmp.file("hub")));
  auto missing = resolve_target("small", env_with_hub(tmp.file("hub")));
  fs::current_path(old);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->repo_id, "facebook/musicgen-melody");
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_EQ(r->notes[0].code, "MG-IO-TARGET-SHORT-NAME");
  EXPECT_EQ(r->notes[0].severity, Severity::note);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(contains(missing.error().message, "facebook/musicgen-small"));
}

TEST(Resolve, InvalidRepoIdsNeverBecomePaths) {
  EXPECT_TRUE(is_valid_repo_id("facebook/musicgen-small"));
  EXPECT_TRUE(is_valid_repo_id("gpt2"));
  EXPECT_FALSE(is_valid_repo_id("../etc"));
  EXPECT_FALSE(is_valid_repo_id("a/b/c"));
  EXPECT_FALSE(is_valid_repo_id("/abs"));
  EXPECT_FALSE(is_valid_repo_id("a/.."));
  EXPECT_FALSE(is_valid_repo_id("a b/c"));
  auto r = resolve_target("definitely/not/a/repo", Env{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "MG-IO-TARGET-NOT-FOUND");
}

TEST(Resolve, RefsMainIsAuthoritative) {
  TempDir tmp("resolve-ref");
  lay_out_hub_repo(tmp.file("hub"), "models--org--name", "old", {"state_dict.bin"}, false);
  fs::create_directories(tmp.file("hub/models--org--name/refs"));
  write_text(tmp.file("hub/models--org--name/refs/main"), "new\n");
  std::vector<std::string> looked;
  auto p = find_in_hf_cache(tmp.file("hub"), "org/name", "state_dict.bin", looked);
  EXPECT_FALSE(p.has_value());
  ASSERT_EQ(looked.size(), 1u);
  EXPECT_EQ(looked[0], tmp.file("hub") + "/models--org--name/snapshots/new/state_dict.bin");
}

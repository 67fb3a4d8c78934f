// The test helpers that find the data sets (testing::DataDir) and report
// missing data: skipped normally, a failure under CI=true.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "test_util.h"

namespace tokenlora {
namespace {

// Sets (or with nullopt unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// DataMissing(path), with what it reports captured into `results` instead
// of applied to the running test.
bool Reported(const std::string& path, ::testing::TestPartResultArray* results) {
  ::testing::ScopedFakeTestPartResultReporter reporter(
      ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, results);
  return testing::DataMissing(path);
}

TEST(TestData, MissingDataSkipsOutsideCi) {
  ScopedEnv ci("CI", std::nullopt);
  ::testing::TestPartResultArray results;
  EXPECT_TRUE(Reported("/nonexistent/tokenlora/gsm8k/test.jsonl", &results));
  ASSERT_EQ(results.size(), 1);
  EXPECT_TRUE(results.GetTestPartResult(0).skipped());
  EXPECT_NE(std::string(results.GetTestPartResult(0).message()).find("scripts/fetch-data"), std::string::npos);
}

TEST(TestData, MissingDataFailsUnderCi) {
  ScopedEnv ci("CI", "true");
  ::testing::TestPartResultArray results;
  EXPECT_TRUE(Reported("/nonexistent/tokenlora/gsm8k/test.jsonl", &results));
  ASSERT_EQ(results.size(), 1);
  EXPECT_TRUE(results.GetTestPartResult(0).nonfatally_failed());
  EXPECT_NE(std::string(results.GetTestPartResult(0).message()).find("/nonexistent/tokenlora/gsm8k/test.jsonl"),
            std::string::npos);
}

TEST(TestData, PresentDataReportsNothing) {
  ScopedEnv ci("CI", "true");
  ::testing::TestPartResultArray results;
  EXPECT_FALSE(Reported(testing::SourcePath("CMakeLists.txt"), &results));
  EXPECT_EQ(results.size(), 0);
}

std::string RunDataDirScript() {
  const std::string cmd = "python3 " + testing::SourcePath("scripts/data_dir.py");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "(popen failed)";
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// One rule for C++ tests and scripts: TOKENLORA_DATA first, then data/ in the
// checkout, then ../shared/data.
TEST(TestData, DataDirHonoursTokenloraDataAndAgreesWithTheScripts) {
  {
    ScopedEnv data("TOKENLORA_DATA", "/somewhere/else");
    EXPECT_EQ(testing::DataDir(), "/somewhere/else");
    EXPECT_EQ(testing::DataPath("gsm8k/test.jsonl"), "/somewhere/else/gsm8k/test.jsonl");
    EXPECT_EQ(RunDataDirScript(), "/somewhere/else");
  }
  ScopedEnv data("TOKENLORA_DATA", std::nullopt);
  const std::string dir = testing::DataDir();
  EXPECT_TRUE(dir == testing::SourcePath("data") || dir == testing::SourcePath("../shared/data")) << dir;
  // The script resolves the same folder (it prints a normalised path).
  const std::string script = RunDataDirScript();
  EXPECT_EQ(std::filesystem::weakly_canonical(script), std::filesystem::weakly_canonical(dir));
}

}  // namespace
}  // namespace tokenlora
